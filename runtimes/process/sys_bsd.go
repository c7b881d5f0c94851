//go:build unix && !linux

package process

import "syscall"

// sysProcAttr puts the process in its own process group, so that killing the group ends everything it
// started. (There is no Pdeathsig outside Linux.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
