package runtimes

import (
	"bytes"
	"testing"
	"time"
)

// TestReusedRegionIsZeroed: a reservation handed back by a closed instance is the next instance's,
// and none of what the first wrote is visible to it, at its start or as it grows.
func TestReusedRegionIsZeroed(t *testing.T) {
	alloc := newRegionPool(NewMemoryBudget(1<<30), 0)
	defer alloc.Close()
	const max = 16 << 20
	first := alloc.Allocate(1<<20, max)
	buf := first.Reallocate(4 << 20)
	if buf == nil {
		t.Fatal("no memory")
	}
	for i := range buf {
		buf[i] = 0xa5
	}
	addr := &buf[0]
	first.Free()

	second := alloc.Allocate(1<<20, max)
	small := second.Reallocate(1 << 20)
	if &small[0] != addr {
		t.Skip("the reservation was not reused (address space could not be reserved?)")
	}
	if !bytes.Equal(small, make([]byte, len(small))) {
		t.Fatal("a reused reservation shows the last instance's bytes at its start")
	}
	small[0] = 1
	grown := second.Reallocate(8 << 20)
	if grown[0] != 1 {
		t.Fatal("growing lost what the instance wrote")
	}
	if !bytes.Equal(grown[1<<20:], make([]byte, len(grown)-1<<20)) {
		t.Fatal("growing a reused reservation shows the last instance's bytes")
	}
	second.Free()
	// Reservations of another size are not mixed up.
	other := alloc.Allocate(1<<20, 2*max)
	if b := other.Reallocate(1 << 20); &b[0] == addr {
		t.Fatal("a reservation of another size was reused")
	}
	other.Free()
}

// TestReadyRegionIsZeroed: the reservation a pool keeps ready has had its pages written; an
// instance given it sees zeros.
func TestReadyRegionIsZeroed(t *testing.T) {
	const size = 64 << 20
	p := newRegionPool(nil, size)
	defer p.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		ready := len(p.free) == 1 && p.free[0].accessible == warmBytes
		p.mu.Unlock()
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no reservation made ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	m := p.Allocate(1<<20, size)
	buf := m.Reallocate(12 << 20)
	if !bytes.Equal(buf, make([]byte, len(buf))) {
		t.Fatal("the ready reservation is not zeroed")
	}
	m.Free()
}
