package process

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"gatehouse.dev/gatehouse/runtimes/process/sandbox"
)

// A sandbox is made by re-executing this binary as its first process, in new mount, PID, network,
// IPC and UTS namespaces (and a user namespace when the worker is not root): package sandbox's init,
// run before main, builds it there and executes the runtime process in its place. This file is the
// worker's side: the namespaces to start it in, and the socket pair it hands its listeners over.

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
	if buf[0] == sandbox.MsgError {
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
