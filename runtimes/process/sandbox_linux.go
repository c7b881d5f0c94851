package process

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A sandbox is made by re-executing this binary as its first process, in new mount, PID, network,
// IPC and UTS namespaces (and a user namespace when the worker is not root). That first process —
// sandboxInit, below, run from this package's init before main — brings up loopback in its network
// namespace, opens the Runtime API listener there and hands it to the worker over a socket pair,
// waits for the worker to put it in its cgroups, builds a root filesystem of read-only system
// directories, the package, the runtime client, a fresh /proc and /dev and a size-capped /tmp,
// pivots into it, gives up root, and executes the runtime process in its place.
//
// Go's os/exec cannot run code between fork and exec, so the re-execution is how the setup runs in
// the child; net.Listen in the child is how the listener ends up inside the network namespace
// (nothing outside can reach it, and nothing inside reaches anything outside).

func init() {
	if len(os.Args) > 0 && os.Args[0] == sandboxArg0 {
		// Never returns: the sandbox's first process becomes the runtime process, or exits.
		os.Exit(sandboxInit())
	}
}

// The file descriptors of the sandbox's first process: the socket pair's end to the worker.
const sandboxFD = 3

// sandboxInit builds the sandbox described by the environment and executes its process. It returns
// only on failure, with the exit code; what failed goes to the worker over the socket and to stderr.
func sandboxInit() int {
	// Credentials, no_new_privs and the securebits are per thread until exec, and exec takes the
	// calling thread's: every step runs on this one.
	runtime.LockOSThread()
	conn := os.NewFile(sandboxFD, "sandbox")
	fail := func(err error) int {
		msg := "sandbox: " + err.Error()
		_, _ = conn.Write([]byte("E" + msg))
		fmt.Fprintln(os.Stderr, msg)
		return 126
	}
	var s sandboxSpec
	if err := json.Unmarshal([]byte(os.Getenv(sandboxEnv)), &s); err != nil {
		return fail(fmt.Errorf("reading the sandbox's description: %w", err))
	}
	if err := loopbackUp(); err != nil {
		return fail(fmt.Errorf("bringing up loopback: %w", err))
	}
	// The Runtime API's listener, then the proxy's: opened here, inside the network namespace, and
	// handed to the worker that serves them.
	addrs := []string{SandboxRuntimeAPI}
	if s.Proxy {
		addrs = append(addrs, SandboxProxy)
	}
	addrs = append(addrs, s.Forwards...)
	var fds []int
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fail(fmt.Errorf("listener %s: %w", a, err))
		}
		lf, err := ln.(*net.TCPListener).File()
		if err != nil {
			return fail(err)
		}
		ln.Close()
		fds = append(fds, int(lf.Fd()))
	}
	// "L" carries the listeners; the worker answers one byte once the process is in its cgroups.
	if err := unix.Sendmsg(int(conn.Fd()), []byte("L"), unix.UnixRights(fds...), nil, 0); err != nil {
		return fail(fmt.Errorf("handing the listeners over: %w", err))
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	var b [1]byte
	if n, err := conn.Read(b[:]); n != 1 || b[0] != 'G' {
		return fail(fmt.Errorf("the worker did not let the sandbox go on: %v", err))
	}
	if err := buildRoot(&s); err != nil {
		return fail(err)
	}
	if err := dropPrivileges(&s); err != nil {
		return fail(err)
	}
	if s.Probe {
		_, _ = conn.Write([]byte("P"))
		return 0
	}
	// The socket closes at exec (close-on-exec): the worker reads EOF, and knows the exec happened.
	unix.CloseOnExec(sandboxFD)
	err := unix.Exec(s.Exe, s.Args, s.Env)
	return fail(fmt.Errorf("executing %s: %w", s.Exe, err))
}

// loopbackUp sets the network namespace's lo interface up: a new namespace has it down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// buildRoot makes the sandbox's root filesystem on s.Root and pivots into it.
func buildRoot(s *sandboxSpec) error {
	// Nothing mounted here may reach the worker's mount namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	root := s.Root
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0755"); err != nil {
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
	if err := bindReadOnly(s.Task, root+SandboxTaskRoot); err != nil {
		return err
	}
	if s.Runtime != "" {
		if err := bindReadOnly(s.Runtime, root+SandboxRuntimeDir); err != nil {
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
	if err := unix.Mount("proc", root+"/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	if err := os.MkdirAll(root+SandboxTmp, 0o1777); err != nil {
		return err
	}
	opts := "mode=1777,size=" + strconv.FormatInt(s.TmpBytes, 10)
	if err := unix.Mount("tmpfs", root+SandboxTmp, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mounting /tmp: %w", err)
	}
	// pivot_root(".", ".") stacks the old root under the new one; unmounting it leaves the new one.
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("leaving the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	// The root itself (its /etc, /dev entries and mount points) is read-only from here on.
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making the root read-only: %w", err)
	}
	_ = unix.Sethostname([]byte("sandbox"))
	return unix.Chdir(SandboxTaskRoot)
}

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
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mounting %s: %w", src, err)
	}
	// A remount must keep the flags the source's mount is locked with (in a user namespace, dropping
	// one fails with EPERM).
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
	var st unix.Statfs_t
	if unix.Statfs(src, &st) == nil {
		if st.Flags&unix.ST_NOEXEC != 0 {
			flags |= unix.MS_NOEXEC
		}
		if st.Flags&unix.ST_NOATIME != 0 {
			flags |= unix.MS_NOATIME
		}
		if st.Flags&unix.ST_NODIRATIME != 0 {
			flags |= unix.MS_NODIRATIME
		}
		if st.Flags&unix.ST_RELATIME != 0 {
			flags |= unix.MS_RELATIME
		}
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("making %s read-only: %w", src, err)
	}
	return nil
}

func touch(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
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
		"passwd":        "root:x:0:0:root:/root:/usr/sbin/nologin\nsbx_user:x:" + strconv.Itoa(nobody) + ":" + strconv.Itoa(nobody) + ":sandbox:/tmp:/usr/sbin/nologin\n",
		"group":         "root:x:0:\nsbx_user:x:" + strconv.Itoa(nobody) + ":\n",
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
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "size=64k,mode=0755"); err != nil {
		return fmt.Errorf("mounting /dev: %w", err)
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom"} {
		if err := touch(dev + "/" + d); err != nil {
			return err
		}
		// A bind of the host's node: making device nodes needs a privilege a user namespace lacks.
		if err := unix.Mount("/dev/"+d, dev+"/"+d, "", unix.MS_BIND, ""); err != nil {
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

// The securebits (linux/securebits.h) that keep a user namespace's root from having capabilities
// after exec.
const (
	secbitNoRoot             = 1 << 0
	secbitNoRootLocked       = 1 << 1
	secbitNoSetuidFixup      = 1 << 2
	secbitNoSetuidFixupLockd = 1 << 3
	secbitKeepCapsLocked     = 1 << 5
)

// dropPrivileges makes the process one with no capabilities that cannot gain any: the nobody user
// when root made the sandbox; otherwise the worker's user, root of its own user namespace only, with
// the securebits that strip root of its capabilities at exec.
func dropPrivileges(s *sandboxSpec) error {
	if s.UserNS {
		bits := secbitNoRoot | secbitNoRootLocked | secbitNoSetuidFixup | secbitNoSetuidFixupLockd | secbitKeepCapsLocked
		if err := unix.Prctl(unix.PR_SET_SECUREBITS, uintptr(bits), 0, 0, 0); err != nil {
			return fmt.Errorf("securebits: %w", err)
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
			return fmt.Errorf("clearing ambient capabilities: %w", err)
		}
	} else if os.Geteuid() == 0 && s.UID != 0 {
		if err := unix.Setgroups(nil); err != nil {
			return fmt.Errorf("dropping groups: %w", err)
		}
		if err := unix.Setresgid(s.GID, s.GID, s.GID); err != nil {
			return fmt.Errorf("setting the group: %w", err)
		}
		if err := unix.Setresuid(s.UID, s.UID, s.UID); err != nil {
			return fmt.Errorf("setting the user: %w", err)
		}
		// A change of user clears the parent-death signal; the process must still die with its worker.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	return nil
}

// sandboxAttr is how the worker starts the sandbox's first process: in new namespaces, in its own
// process group, killed with its worker; with a user namespace mapping the worker's user when the
// worker is not root.
func sandboxAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
	}
	if uid, gid := os.Geteuid(), os.Getegid(); uid != 0 {
		// The worker's user is root inside (the one user it may map), so that the first process has
		// the capabilities to build the sandbox; dropPrivileges takes them away before exec.
		a.Cloneflags |= syscall.CLONE_NEWUSER
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
		a.GidMappingsEnableSetgroups = false
	}
	return a
}

// sandboxHandshake reads the sandbox's first message: its listeners (the Runtime API's, then the
// proxy's if it has one), or why it failed.
func sandboxHandshake(conn *os.File) ([]net.Listener, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(16*4))
	n, oobn, _, _, err := unix.Recvmsg(int(conn.Fd()), buf, oob, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoSandbox, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: its first process ended before it was ready", ErrNoSandbox)
	}
	if buf[0] == 'E' {
		return nil, fmt.Errorf("%w: %s", ErrNoSandbox, strings.TrimPrefix(string(buf[1:n]), "sandbox: "))
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("%w: no runtime API listener handed over", ErrNoSandbox)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, fmt.Errorf("%w: no runtime API listener handed over", ErrNoSandbox)
	}
	var lns []net.Listener
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "sandbox-listener")
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("%w: %w", ErrNoSandbox, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// socketPair is the worker's end and the sandbox's end of the socket between them.
func socketPair() (worker, sandbox *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "sandbox-worker"), os.NewFile(uintptr(fds[1]), "sandbox-child"), nil
}
