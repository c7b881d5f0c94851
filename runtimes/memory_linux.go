package runtimes

import (
	"sync"
	"syscall"
	"unsafe"

	"github.com/tetratelabs/wazero/experimental"
)

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14).
const madvPopulateWrite = 23

// reservedMemory backs a linear memory with address space reserved up front for its maximum size:
// growing it makes more of the reservation accessible instead of copying the memory to a larger
// buffer, and fresh pages come zeroed from the kernel (a warm Go hello instance is 6.7 MiB of RSS this
// way, against 9.7 MiB with memories on the Go heap).
//
// A closed instance's reservation is kept for the next one (see regionPool), its pages still
// resident: on the virtual machines Gatehouse runs on, the first write to a page the process has
// never written costs microseconds (5 µs a page was measured; copying 3 MB into fresh pages took
// 3.8 ms, into pages written before 0.13 ms), which made that, not the guest, most of a cold start.
// The pages the last instance used are zeroed again, in the new instance's view only, as it grows
// into them: an instance never sees what another left.
type reservedMemory struct {
	region []byte // the whole reservation; only region[:committed] is the instance's
	// committed is the instance's size; accessible is how much of the region is readable and
	// writable (what any instance of this reservation committed); the bytes between committed and
	// accessible may hold an earlier instance's data.
	committed, accessible uint64
	budget                *MemoryBudget
	pool                  *regionPool
}

// regionPool keeps the reservations of closed instances for new ones, up to a bound, and keeps one
// reservation of the size most instances take ready, its first pages written once: the first
// instance a new worker starts, and the first of a burst, do not pay for fresh pages either.
type regionPool struct {
	mu     sync.Mutex
	free   []*reservedMemory
	bytes  uint64 // accessible bytes held
	closed bool
	budget *MemoryBudget
	// warmSize is the reservation size kept ready (the engine's memory limit, which a module
	// without a maximum of its own gets), 0 for none; warming is set while one is being made.
	warmSize uint64
	warming  bool
}

const (
	// poolRegions and poolBytes bound what a pool keeps: enough for a burst of cold starts of
	// a few functions (a Go guest's memory is 4–7 MiB), at most 64 MiB of resident pages per
	// engine, outside every instance's memory limit and the worker's budget.
	poolRegions = 16
	poolBytes   = 64 << 20
	// warmBytes is how much of the ready reservation is written in advance: a Go guest's memory
	// after its first invocation.
	warmBytes = 8 << 20
)

// newRegionPool returns a pool whose memories count against budget (nil: no bound), keeping one
// reservation of warmSize bytes ready (0: none).
func newRegionPool(budget *MemoryBudget, warmSize uint64) *regionPool {
	p := &regionPool{budget: budget, warmSize: warmSize}
	p.mu.Lock()
	p.warmLocked()
	p.mu.Unlock()
	return p
}

// Allocate implements experimental.MemoryAllocator: a kept reservation of size max, or a new one; a
// memory whose address space cannot be reserved lives on the Go heap instead.
func (p *regionPool) Allocate(capacity, max uint64) experimental.LinearMemory {
	if m := p.get(max); m != nil {
		return m
	}
	region, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_NONE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		return &heapMemory{budget: p.budget}
	}
	return &reservedMemory{region: region, budget: p.budget, pool: p}
}

func (p *regionPool) get(size uint64) *reservedMemory {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if m := p.free[i]; uint64(len(m.region)) == size {
			p.free = append(p.free[:i], p.free[i+1:]...)
			p.bytes -= m.accessible
			m.budget = p.budget
			if size == p.warmSize {
				p.warmLocked()
			}
			return m
		}
	}
	if size == p.warmSize {
		p.warmLocked()
	}
	return nil
}

// warmLocked makes a reservation of warmSize ready in the background, unless the pool has one or
// is making one. p.mu is held.
func (p *regionPool) warmLocked() {
	if p.warmSize == 0 || p.warming || p.closed {
		return
	}
	for _, m := range p.free {
		if uint64(len(m.region)) == p.warmSize {
			return
		}
	}
	p.warming = true
	go func() {
		m := p.prepare()
		p.mu.Lock()
		p.warming = false
		p.mu.Unlock()
		if m != nil && !p.put(m) {
			m.unmap()
		}
	}()
}

// prepare reserves warmSize bytes and writes the first warmBytes once.
func (p *regionPool) prepare() *reservedMemory {
	region, err := syscall.Mmap(-1, 0, int(p.warmSize), syscall.PROT_NONE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	n := min(uint64(warmBytes), p.warmSize)
	if err := syscall.Mprotect(region[:n], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
		syscall.Munmap(region)
		return nil
	}
	for i := uint64(0); i < n; i += 4096 {
		region[i] = 1 // not zero: the write must reach the page; the next instance clears it
	}
	return &reservedMemory{region: region, accessible: n, pool: p}
}

func (p *regionPool) put(m *reservedMemory) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.free) >= poolRegions || p.bytes+m.accessible > poolBytes {
		return false
	}
	p.free = append(p.free, m)
	p.bytes += m.accessible
	return true
}

// Close releases the kept reservations; memories freed later are released at once.
func (p *regionPool) Close() {
	p.mu.Lock()
	free := p.free
	p.free, p.bytes, p.closed = nil, 0, true
	p.mu.Unlock()
	for _, m := range free {
		m.unmap()
	}
}

// Reallocate makes the first size bytes usable. It returns nil when size is past the reservation or
// the kernel refuses, which the guest sees as a failed memory.grow.
func (m *reservedMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.region)) {
		return nil
	}
	if size > m.committed {
		if m.committed == 0 {
			m.budget.force(size)
		} else if !m.budget.reserve(m.committed, size-m.committed) {
			return nil
		}
		// What an earlier instance wrote, zeroed.
		if m.committed < m.accessible {
			clear(m.region[m.committed:min(size, m.accessible)])
		}
		if size > m.accessible {
			// Whole pages only; wasm sizes are multiples of 64 KiB, so always page-aligned.
			if err := syscall.Mprotect(m.region[m.accessible:size], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
				m.budget.release(size - m.committed)
				return nil
			}
			// Fault the new pages in with one call rather than one fault per page as the guest
			// first touches them: a Go guest's cold start took 20 ms instead of 12 without this.
			// It makes every committed page resident (a warm Go hello: 6.7 MiB instead of 5.3).
			// Kernels before 5.14 lack MADV_POPULATE_WRITE and refuse it; their pages fault in as
			// used.
			syscall.Syscall(syscall.SYS_MADVISE, uintptr(unsafe.Pointer(&m.region[m.accessible])), uintptr(size-m.accessible), madvPopulateWrite)
			m.accessible = size
		}
		m.committed = size
	}
	return m.region[:size:size]
}

// Free hands the reservation back to the pool, or releases it when the pool is full.
func (m *reservedMemory) Free() {
	if m.region == nil {
		return
	}
	m.budget.release(m.committed)
	m.committed, m.budget = 0, nil
	if m.pool != nil && m.pool.put(m) {
		return
	}
	m.unmap()
}

func (m *reservedMemory) unmap() {
	syscall.Munmap(m.region)
	m.region, m.accessible = nil, 0
}
