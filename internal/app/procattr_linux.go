package app

import "syscall"

// workerProcAttr puts a worker in its own process group, so a Ctrl-C in the terminal reaches only
// `up`, which then stops workers in order; and has the kernel kill it if `up` dies, so a worker never
// outlives its supervisor.
func workerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
