//go:build !unix

package scheduler

import "errors"

// SlotsSupported tells whether slot tables (and so the watchdog) work on this system.
const SlotsSupported = false

func mapFile(path string, write bool) ([]byte, error) {
	return nil, errors.New("slot tables need a Unix system")
}

func unmap(mem []byte) error { return nil }
