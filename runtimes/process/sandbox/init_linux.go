package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

func init() {
	if len(os.Args) > 0 && os.Args[0] == Arg0 {
		// Never returns: the sandbox's first process becomes the runtime process, or exits.
		os.Exit(run())
	}
}

// run builds the sandbox described by the environment and executes its process. It returns only on
// failure, with the exit code; what failed goes to the worker over the socket and to stderr.
func run() int {
	// Credentials, no_new_privs and the securebits are per thread until exec, and exec takes the
	// calling thread's: every step runs on this one.
	runtime.LockOSThread()
	conn := os.NewFile(FD, "sandbox")
	fail := func(err error) int {
		msg := "sandbox: " + err.Error()
		_, _ = conn.Write([]byte(string(rune(MsgError)) + msg))
		fmt.Fprintln(os.Stderr, msg)
		return 126
	}
	var s Spec
	if err := json.Unmarshal([]byte(os.Getenv(Env)), &s); err != nil {
		return fail(fmt.Errorf("reading the sandbox's description: %w", err))
	}
	if err := loopbackUp(); err != nil {
		return fail(fmt.Errorf("bringing up loopback: %w", err))
	}
	// The listeners, opened here inside the network namespace and handed to the worker that serves
	// them.
	var fds []int
	for _, a := range s.Listen {
		fd, err := listen(a)
		if err != nil {
			return fail(fmt.Errorf("listener %s: %w", a, err))
		}
		fds = append(fds, fd)
	}
	if err := syscall.Sendmsg(FD, []byte{MsgListeners}, syscall.UnixRights(fds...), nil, 0); err != nil {
		return fail(fmt.Errorf("handing the listeners over: %w", err))
	}
	for _, fd := range fds {
		syscall.Close(fd)
	}
	var b [1]byte
	if n, err := conn.Read(b[:]); n != 1 || b[0] != MsgGo {
		return fail(fmt.Errorf("the worker did not let the sandbox go on: %v", err))
	}
	if err := buildRoot(&s); err != nil {
		return fail(err)
	}
	if err := dropPrivileges(&s); err != nil {
		return fail(err)
	}
	if s.Probe {
		_, _ = conn.Write([]byte{MsgProbed})
		return 0
	}
	// The socket closes at exec (close-on-exec): the worker reads EOF, and knows the exec happened.
	syscall.CloseOnExec(FD)
	err := syscall.Exec(s.Exe, s.Args, s.Env)
	return fail(fmt.Errorf("executing %s: %w", s.Exe, err))
}

// loopbackUp sets the network namespace's lo interface up: a new namespace has it down.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [24]byte
	}
	copy(ifr.name[:], "lo")
	ifr.flags = syscall.IFF_UP | syscall.IFF_LOOPBACK | syscall.IFF_RUNNING
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return errno
	}
	return nil
}

// listen opens a TCP listener on an IPv4 address "a.b.c.d:port".
func listen(addr string) (int, error) {
	host, port, ok := strings.Cut(addr, ":")
	p, err := strconv.Atoi(port)
	parts := strings.Split(host, ".")
	if !ok || err != nil || p < 1 || p > 65535 || len(parts) != 4 {
		return -1, fmt.Errorf("not an IPv4 address and port")
	}
	sa := &syscall.SockaddrInet4{Port: p}
	for i, part := range parts {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || n > 255 {
			return -1, fmt.Errorf("not an IPv4 address and port")
		}
		sa.Addr[i] = byte(n)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	err = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err == nil {
		err = syscall.Bind(fd, sa)
	}
	if err == nil {
		err = syscall.Listen(fd, syscall.SOMAXCONN)
	}
	if err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

// buildRoot makes the sandbox's root filesystem on s.Root and pivots into it.
func buildRoot(s *Spec) error {
	// Nothing mounted here may reach the worker's mount namespace.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	root := s.Root
	if err := syscall.Mount("tmpfs", root, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=1m,mode=0755"); err != nil {
		return fmt.Errorf("root filesystem: %w", err)
	}
	// System directories: bound read-only where they are directories, copied as links where they are
	// links (/bin -> usr/bin on merged-/usr systems).
	for _, d := range []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"} {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
			continue
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(d)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, root+d); err != nil {
				return err
			}
		case fi.IsDir():
			if err := bindReadOnly(d, root+d); err != nil {
				return err
			}
		}
	}
	for _, d := range s.Binds {
		if err := bindReadOnly(d, root+d); err != nil {
			return err
		}
	}
	if err := bindReadOnly(s.Task, root+TaskRoot); err != nil {
		return err
	}
	if s.Runtime != "" {
		if err := bindReadOnly(s.Runtime, root+RuntimeDir); err != nil {
			return err
		}
	}
	if err := makeEtc(root); err != nil {
		return err
	}
	if err := makeDev(root); err != nil {
		return err
	}
	if err := os.MkdirAll(root+"/proc", 0o555); err != nil {
		return err
	}
	if err := syscall.Mount("proc", root+"/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	if err := os.MkdirAll(root+Tmp, 0o1777); err != nil {
		return err
	}
	opts := "mode=1777,size=" + strconv.FormatInt(s.TmpBytes, 10)
	if err := syscall.Mount("tmpfs", root+Tmp, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mounting /tmp: %w", err)
	}
	// pivot_root(".", ".") stacks the old root under the new one; unmounting it leaves the new one.
	if err := syscall.Chdir(root); err != nil {
		return err
	}
	if err := syscall.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := syscall.Unmount(".", syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("leaving the old root: %w", err)
	}
	if err := syscall.Chdir("/"); err != nil {
		return err
	}
	// The root itself (its /etc, /dev entries and mount points) is read-only from here on.
	if err := syscall.Mount("", "/", "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making the root read-only: %w", err)
	}
	_ = syscall.Sethostname([]byte("sandbox"))
	return syscall.Chdir(TaskRoot)
}

// The statfs flags (linux/statfs.h) a bind mount's read-only remount must keep.
const (
	stNoExec     = 0x8
	stNoAtime    = 0x400
	stNoDirAtime = 0x800
	stRelAtime   = 0x1000
)

// bindReadOnly mounts the host directory or file src at dst, read-only, with no set-user-ID programs
// and no devices.
func bindReadOnly(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		err = os.MkdirAll(dst, 0o755)
	} else {
		err = touch(dst)
	}
	if err != nil {
		return err
	}
	if err := syscall.Mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("mounting %s: %w", src, err)
	}
	// A remount must keep the flags the source's mount is locked with (in a user namespace, dropping
	// one fails with EPERM).
	flags := uintptr(syscall.MS_REMOUNT | syscall.MS_BIND | syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV)
	var st syscall.Statfs_t
	if syscall.Statfs(src, &st) == nil {
		for _, f := range [][2]uintptr{{stNoExec, syscall.MS_NOEXEC}, {stNoAtime, syscall.MS_NOATIME},
			{stNoDirAtime, syscall.MS_NODIRATIME}, {stRelAtime, syscall.MS_RELATIME}} {
			if uintptr(st.Flags)&f[0] != 0 {
				flags |= f[1]
			}
		}
	}
	if err := syscall.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("making %s read-only: %w", src, err)
	}
	return nil
}

func touch(path string) error {
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		if err := os.MkdirAll(path[:i], 0o755); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// makeEtc writes the few files of /etc a runtime reads, and binds the system's TLS trust store and
// dynamic linker cache; nothing else of the host's /etc is seen.
func makeEtc(root string) error {
	files := map[string]string{
		"passwd":        "root:x:0:0:root:/root:/usr/sbin/nologin\nsbx_user:x:" + strconv.Itoa(Nobody) + ":" + strconv.Itoa(Nobody) + ":sandbox:/tmp:/usr/sbin/nologin\n",
		"group":         "root:x:0:\nsbx_user:x:" + strconv.Itoa(Nobody) + ":\n",
		"hosts":         "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost\n",
		"nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
		"resolv.conf":   "",
	}
	if err := os.MkdirAll(root+"/etc", 0o755); err != nil {
		return err
	}
	for name, body := range files {
		if err := os.WriteFile(root+"/etc/"+name, []byte(body), 0o644); err != nil {
			return err
		}
	}
	for _, p := range []string{"/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := bindReadOnly(p, root+p); err != nil {
			return err
		}
	}
	return nil
}

// makeDev makes a /dev with the harmless character devices and the usual links.
func makeDev(root string) error {
	dev := root + "/dev"
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount("tmpfs", dev, "tmpfs", syscall.MS_NOSUID|syscall.MS_NOEXEC, "size=64k,mode=0755"); err != nil {
		return fmt.Errorf("mounting /dev: %w", err)
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom"} {
		if err := touch(dev + "/" + d); err != nil {
			return err
		}
		// A bind of the host's node: making device nodes needs a privilege a user namespace lacks.
		if err := syscall.Mount("/dev/"+d, dev+"/"+d, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("mounting /dev/%s: %w", d, err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, dev+"/"+name); err != nil {
			return err
		}
	}
	return os.MkdirAll(dev+"/shm", 0o1777)
}

// prctl(2) options and the securebits (linux/prctl.h, linux/securebits.h) used here.
const (
	prSetPdeathsig        = 1
	prSetSecurebits       = 28
	prSetNoNewPrivs       = 38
	prCapAmbient          = 47
	prCapAmbientClearAll  = 4
	secbitNoRoot          = 1 << 0
	secbitNoRootLocked    = 1 << 1
	secbitNoSetuidFixup   = 1 << 2
	secbitNoSetuidFixupLk = 1 << 3
	secbitKeepCapsLocked  = 1 << 5
)

func prctl(option, arg uintptr) error {
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, option, arg, 0, 0, 0, 0); errno != 0 {
		return errno
	}
	return nil
}

// dropPrivileges makes the process one with no capabilities that cannot gain any: the nobody user
// when root made the sandbox; otherwise the worker's user, root of its own user namespace only, with
// the securebits that strip root of its capabilities at exec.
func dropPrivileges(s *Spec) error {
	if s.UserNS {
		bits := secbitNoRoot | secbitNoRootLocked | secbitNoSetuidFixup | secbitNoSetuidFixupLk | secbitKeepCapsLocked
		if err := prctl(prSetSecurebits, uintptr(bits)); err != nil {
			return fmt.Errorf("securebits: %w", err)
		}
		if err := prctl(prCapAmbient, prCapAmbientClearAll); err != nil {
			return fmt.Errorf("clearing ambient capabilities: %w", err)
		}
	} else if os.Geteuid() == 0 && s.UID != 0 {
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("dropping groups: %w", err)
		}
		if err := syscall.Setresgid(s.GID, s.GID, s.GID); err != nil {
			return fmt.Errorf("setting the group: %w", err)
		}
		if err := syscall.Setresuid(s.UID, s.UID, s.UID); err != nil {
			return fmt.Errorf("setting the user: %w", err)
		}
		// A change of user clears the parent-death signal; the process must still die with its worker.
		if err := prctl(prSetPdeathsig, uintptr(syscall.SIGKILL)); err != nil {
			return err
		}
	}
	if err := prctl(prSetNoNewPrivs, 1); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	return nil
}
