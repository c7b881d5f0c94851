//go:build !unix

package process

import (
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// killGroup kills the process alone: there are no process groups to kill here.
func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

func exitError(pid int, st *os.ProcessState, killed bool) *ExitError {
	return &ExitError{Pid: pid, Code: st.ExitCode()}
}
