package functions

import "gatehouse.dev/gatehouse/internal/spec"

// SpecManifest is the manifest of function name as a stack describes it (spec.Function): how
// `gatehouse up` deploys the stack file's functions, and how `gatehouse deploy DIR` deploys a
// directory the stack file defines.
func SpecManifest(name string, fn spec.Function) Manifest {
	m := NewManifest(name)
	m.MemoryMB, m.Timeout, m.Environment = fn.MemoryMB, fn.Timeout.D(), fn.Environment
	m.MaxConcurrency, m.MinWarm, m.IdleTimeout = fn.MaxConcurrency, fn.MinWarm, fn.IdleTimeout.D()
	return m
}
