//go:build unix && !linux

package app

import "syscall"

// workerProcAttr puts a worker in its own process group, so a Ctrl-C in the terminal reaches only
// `up`. Without Linux's parent-death signal, a worker whose supervisor died exits when its bus
// connection is gone for good.
func workerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
