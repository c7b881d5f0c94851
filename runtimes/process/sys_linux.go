package process

import "syscall"

// sysProcAttr puts the process in its own process group, so that killing the group ends everything it
// started, and has the kernel kill it if the thread that started it dies (Pdeathsig): a worker that
// crashes leaves no runtime process behind. (Pdeathsig follows the OS thread that started the process;
// the Go runtime keeps its threads unless a goroutine ends while locked to one, which Gatehouse does not.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
