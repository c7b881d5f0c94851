package scheduler

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Slots is a table of the invocations a worker is running, kept in a file mapped into memory so that
// the process supervising the worker can read it even while the worker is frozen by a runaway guest
// (compiled guest code has no safepoints, so a guest that never returns can stall the whole Go runtime
// of its process). The supervisor kills a worker whose slot shows a deadline long past, and reads from
// the table which invocations had started.
//
// Each slot is slotSize bytes: the deadline in Unix milliseconds (0 = free), the request id's length,
// and the request id (at most MaxSlotRequestID bytes).
type Slots struct {
	mem  []byte
	n    int
	mu   sync.Mutex
	free []int
}

const (
	slotSize = 64
	// MaxSlotRequestID is the longest request id a slot records.
	MaxSlotRequestID = slotSize - 9
)

// SlotsFileSize is the size of a slot file for n slots.
func SlotsFileSize(n int) int64 { return int64(n) * slotSize }

// CreateSlotsFile creates (or clears) the slot file of a worker with room for n invocations.
func CreateSlotsFile(path string, n int) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Truncate(SlotsFileSize(n))
}

// OpenSlots maps a slot file for writing.
func OpenSlots(path string) (*Slots, error) {
	mem, err := mapFile(path, true)
	if err != nil {
		return nil, fmt.Errorf("scheduler: mapping slots %s: %w", path, err)
	}
	n := len(mem) / slotSize
	if n == 0 {
		return nil, errors.New("scheduler: empty slot file")
	}
	s := &Slots{mem: mem, n: n}
	for i := n - 1; i >= 0; i-- {
		s.free = append(s.free, i)
	}
	return s, nil
}

// Len is the number of slots: how many invocations the worker may run at once.
func (s *Slots) Len() int { return s.n }

func (s *Slots) deadline(i int) *atomic.Int64 {
	return (*atomic.Int64)(unsafe.Pointer(&s.mem[i*slotSize]))
}

// acquire records a started invocation and returns its slot, or -1 when every slot is taken.
func (s *Slots) acquire(requestID string, deadline time.Time) int {
	s.mu.Lock()
	if len(s.free) == 0 {
		s.mu.Unlock()
		return -1
	}
	i := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	s.mu.Unlock()
	slot := s.mem[i*slotSize : (i+1)*slotSize]
	id := requestID
	if len(id) > MaxSlotRequestID {
		id = id[:MaxSlotRequestID]
	}
	slot[8] = byte(len(id))
	copy(slot[9:], id)
	// The deadline is written last: a reader that sees it also sees the id.
	s.deadline(i).Store(deadline.UnixMilli())
	return i
}

// release frees slot i.
func (s *Slots) release(i int) {
	if i < 0 {
		return
	}
	s.deadline(i).Store(0)
	s.mu.Lock()
	s.free = append(s.free, i)
	s.mu.Unlock()
}

// Close unmaps the table.
func (s *Slots) Close() error { return unmap(s.mem) }

// Running is one invocation a slot table shows as started.
type Running struct {
	RequestID string
	Deadline  time.Time
}

// SlotReader reads another process's slot table.
type SlotReader struct {
	mem []byte
}

// OpenSlotReader maps a slot file read-only.
func OpenSlotReader(path string) (*SlotReader, error) {
	mem, err := mapFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("scheduler: mapping slots %s: %w", path, err)
	}
	return &SlotReader{mem: mem}, nil
}

// Running lists the invocations that are started and not finished.
func (r *SlotReader) Running() []Running {
	var out []Running
	for off := 0; off+slotSize <= len(r.mem); off += slotSize {
		d := (*atomic.Int64)(unsafe.Pointer(&r.mem[off])).Load()
		if d == 0 {
			continue
		}
		n := int(r.mem[off+8])
		if n > MaxSlotRequestID {
			n = MaxSlotRequestID
		}
		out = append(out, Running{RequestID: string(r.mem[off+9 : off+9+n]), Deadline: time.UnixMilli(d)})
	}
	return out
}

// Close unmaps the table.
func (r *SlotReader) Close() error { return unmap(r.mem) }
