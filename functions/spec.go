package functions

import "gatehouse.dev/gatehouse/internal/spec"

// SpecManifest is the manifest of function name as a stack describes it (spec.Function): how
// `gatehouse up` deploys the stack file's functions, and how `gatehouse deploy DIR` deploys a
// directory the stack file defines. The function's settings are the manifest's as they are.
func SpecManifest(name string, fn spec.Function) Manifest {
	m := NewManifest(name)
	m.FunctionSettings = fn.FunctionSettings
	if spec.IsProcessRuntime(fn.Runtime) {
		m.Module = DefaultPackageFile
	}
	return m
}
