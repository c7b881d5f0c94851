//go:build !linux

package runtimes

import "github.com/tetratelabs/wazero/experimental"

// regionPool allocates memories on the Go heap, counted against budget: outside Linux, address space
// is not reserved and nothing is kept.
type regionPool struct{ budget *MemoryBudget }

func newRegionPool(budget *MemoryBudget, warmSize uint64) *regionPool {
	return &regionPool{budget: budget}
}

// Allocate implements experimental.MemoryAllocator.
func (p *regionPool) Allocate(capacity, max uint64) experimental.LinearMemory {
	return &heapMemory{budget: p.budget}
}

// Close does nothing.
func (p *regionPool) Close() {}
