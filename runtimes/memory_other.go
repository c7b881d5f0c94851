//go:build !linux

package runtimes

import "github.com/tetratelabs/wazero/experimental"

// guardedAllocator returns the allocator of memories on the Go heap, counted against budget: outside
// Linux, address space is not reserved.
func guardedAllocator(budget *MemoryBudget) experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capacity, max uint64) experimental.LinearMemory {
		return &heapMemory{budget: budget}
	})
}
