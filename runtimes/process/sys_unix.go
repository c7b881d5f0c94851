//go:build unix

package process

import (
	"errors"
	"os"
	"syscall"
)

// killGroup sends SIGKILL to the process group whose leader is pid (the process was started with
// Setpgid, so its group id is its pid).
func killGroup(pid int) {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		// The group is gone or not ours: fall back to the leader alone.
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// exitError describes how a process ended. killed says Gatehouse sent it SIGKILL.
func exitError(pid int, st *os.ProcessState, killed bool) *ExitError {
	e := &ExitError{Pid: pid, Code: st.ExitCode()}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Code = -1
		e.Signal = ws.Signal()
		e.OutOfMemory = e.Signal == syscall.SIGKILL && !killed
	}
	return e
}
