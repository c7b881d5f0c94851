//go:build !unix

package scheduler

import "errors"

func mapFile(path string, write bool) ([]byte, error) {
	return nil, errors.New("slot tables need a Unix system")
}

func unmap(mem []byte) error { return nil }
