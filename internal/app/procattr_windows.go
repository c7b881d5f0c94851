package app

import "syscall"

// workerProcAttr: Windows has no process groups of this kind; a worker whose supervisor died exits when
// its bus connection is gone for good.
func workerProcAttr() *syscall.SysProcAttr { return nil }
