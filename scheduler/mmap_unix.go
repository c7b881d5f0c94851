//go:build unix

package scheduler

import (
	"os"
	"syscall"
)

// SlotsSupported tells whether slot tables (and so the watchdog) work on this system.
const SlotsSupported = true

func mapFile(path string, write bool) ([]byte, error) {
	flag, prot := os.O_RDONLY, syscall.PROT_READ
	if write {
		flag, prot = os.O_RDWR, syscall.PROT_READ|syscall.PROT_WRITE
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return syscall.Mmap(int(f.Fd()), 0, int(st.Size()), prot, syscall.MAP_SHARED)
}

func unmap(mem []byte) error { return syscall.Munmap(mem) }
