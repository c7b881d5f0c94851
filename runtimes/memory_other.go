//go:build !linux

package runtimes

import "github.com/tetratelabs/wazero/experimental"

// guardedAllocator returns nil: outside Linux, wazero's own growing memories are used.
func guardedAllocator() experimental.MemoryAllocator { return nil }
