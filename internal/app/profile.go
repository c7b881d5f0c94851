package app

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// envCPUProfile names a directory: when set, every gatehouse process (`up` and each worker it starts,
// which inherit the environment) writes a CPU profile there, NAME-PID.pprof, when it exits. It is how
// the whole path is profiled under load (docs/performance.md).
const envCPUProfile = "GATEHOUSE_CPUPROFILE"

// startCPUProfile starts a CPU profile of this process into dir and returns the function that stops
// it and closes the file.
func startCPUProfile(dir string, args []string) (func(), error) {
	name := "gatehouse"
	if len(args) > 0 {
		name = args[0]
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", filepath.Base(name), os.Getpid())))
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
