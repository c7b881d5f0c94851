//go:build !linux

package process

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
)

// Sandboxes are made with Linux namespaces; elsewhere there are none, and no cgroups.

func sandboxAttr() *syscall.SysProcAttr { return nil }

func sandboxHandshake(*os.File) ([]net.Listener, error) {
	return nil, fmt.Errorf("%w: no Linux namespaces on %s", ErrNoSandbox, runtime.GOOS)
}

func socketPair() (worker, sandbox *os.File, err error) {
	return nil, nil, fmt.Errorf("%w: no Linux namespaces on %s", ErrNoSandbox, runtime.GOOS)
}

type cgroup struct{}

func newCgroup(name string, memBytes int64, maxProcs int) (*cgroup, error) {
	return &cgroup{}, fmt.Errorf("no cgroups on %s", runtime.GOOS)
}

func (c *cgroup) add(pid int) error { return nil }

func (c *cgroup) hasMemory() bool    { return false }
func (c *cgroup) oomKills() int      { return 0 }
func (c *cgroup) peakMemory() uint64 { return 0 }
func (c *cgroup) remove()            {}

func cgroupName(workerPid int) string { return "" }

// RemoveStaleCgroups does nothing: there are no cgroups here.
func RemoveStaleCgroups() int { return 0 }
