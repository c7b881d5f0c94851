// Package ric holds Gatehouse's own runtime interface clients of the Lambda Runtime API, for the
// python3.x and nodejs*.x runtimes (README.md): scripts a worker writes out and starts with the
// runtime's interpreter. It imports nothing of Gatehouse.
package ric

import (
	_ "embed"
)

// Python is bootstrap.py, started as `python3 bootstrap.py`.
//
//go:embed bootstrap.py
var Python []byte

// Node is bootstrap.mjs, started as `node bootstrap.mjs`.
//
//go:embed bootstrap.mjs
var Node []byte
