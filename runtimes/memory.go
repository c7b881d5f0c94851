package runtimes

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrMemoryBudget means the instances sharing a memory budget (a worker's) have committed all of it:
// a new instance is refused, and a guest's memory.grow fails.
var ErrMemoryBudget = errors.New("worker memory budget exhausted")

// MemoryBudget bounds the linear memory committed by every instance that shares it: all the engines
// of one worker. A guest that grows its memory past what is left sees memory.grow fail (a Go guest
// then dies with "out of memory"). The last quarter of the budget is kept for small instances (at
// most an eighth of the budget each): a guest that eats memory is stopped while the others can still
// grow. It is safe for concurrent use.
type MemoryBudget struct {
	limit int64
	used  atomic.Int64
}

// NewMemoryBudget returns a budget of limit bytes.
func NewMemoryBudget(limit int64) *MemoryBudget { return &MemoryBudget{limit: limit} }

// Limit is the budget's size in bytes.
func (b *MemoryBudget) Limit() int64 { return b.limit }

// Used is the linear memory committed now, in bytes.
func (b *MemoryBudget) Used() int64 { return b.used.Load() }

// reserve takes n more bytes for an instance that has current, or reports false when they are not
// left for it. A nil budget has no bound.
func (b *MemoryBudget) reserve(current, n uint64) bool {
	if b == nil {
		return true
	}
	for {
		used := b.used.Load()
		next := used + int64(n)
		if next > b.limit || next > b.limit-b.limit/4 && current+n > uint64(b.limit/8) {
			return false
		}
		if b.used.CompareAndSwap(used, next) {
			return true
		}
	}
}

// force takes n bytes whatever is left: a memory's initial size, which wazero cannot be refused (an
// instance is refused before, by room).
func (b *MemoryBudget) force(n uint64) {
	if b != nil {
		b.used.Add(int64(n))
	}
}

func (b *MemoryBudget) release(n uint64) {
	if b != nil {
		b.used.Add(-int64(n))
	}
}

// room checks that n more bytes fit.
func (b *MemoryBudget) room(n uint64) error {
	if b == nil || b.used.Load()+int64(n) <= b.limit {
		return nil
	}
	return fmt.Errorf("%w: %d of %d MiB committed, an instance needs %d MiB more", ErrMemoryBudget,
		b.used.Load()>>20, b.limit>>20, (n+1<<20-1)>>20)
}

// heapMemory is a linear memory on the Go heap that grows by copying: the fallback when address space
// cannot be reserved.
type heapMemory struct {
	buf    []byte
	budget *MemoryBudget
}

// Reallocate grows the memory to size bytes, or returns nil when the budget has no room.
func (m *heapMemory) Reallocate(size uint64) []byte {
	if grow := size - uint64(len(m.buf)); size > uint64(len(m.buf)) {
		if len(m.buf) == 0 {
			m.budget.force(grow)
		} else if !m.budget.reserve(uint64(len(m.buf)), grow) {
			return nil
		}
	}
	if size > uint64(cap(m.buf)) {
		grown := make([]byte, size, max(size, 2*uint64(cap(m.buf))))
		copy(grown, m.buf)
		m.buf = grown
	}
	m.buf = m.buf[:size]
	return m.buf
}

// Free drops the buffer.
func (m *heapMemory) Free() {
	m.budget.release(uint64(len(m.buf)))
	m.buf = nil
}
