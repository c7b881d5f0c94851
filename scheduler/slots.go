package scheduler

import (
	"bytes"
	"context"
	"encoding/binary"
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
// of its process). The supervisor kills a worker whose slot shows a deadline long past.
//
// After the slots comes a ring of the request ids whose guest code was entered most recently. When a
// worker dies, its callers learn from the ring which invocations may have run (they fail: running them
// again could repeat their effects) and which never reached the guest (they can safely run elsewhere).
// A Go goroutine can only stop at a safepoint, which guest code has none of, so a frozen worker's
// invocations are either in the ring or never entered their guest.
//
// Each slot and ring entry is slotSize bytes: a number (the deadline in Unix milliseconds for a slot,
// 0 = free; a sequence number for a ring entry, 0 = empty), the request id's length, and the request id
// (at most MaxSlotRequestID bytes).
type Slots struct {
	mem  []byte
	n    int
	mu   sync.Mutex
	free []int
	seq  atomic.Uint64
	aseq atomic.Uint64
}

// RingEntries is how many recently entered invocations the ring remembers; far more than a worker
// runs at once.
const RingEntries = 4096

// After the ring come the answers: the outcomes of the most recent invocations with small responses,
// so that when a worker freezes after a function finished but before its reply left the process, the
// supervisor can still deliver the reply.
const (
	// AnswerEntries is how many recent answers are kept.
	AnswerEntries = 64
	answerSize    = 16 << 10
	answerHeader  = 128
	// MaxAnswerBytes is the largest response kept as an answer.
	MaxAnswerBytes = answerSize - answerHeader
)

const (
	slotSize = 64
	// MaxSlotRequestID is the longest request id a slot records.
	MaxSlotRequestID = slotSize - 9
)

// Last comes the beat: the time (Unix milliseconds) the worker's Go runtime last ran its beating
// goroutine, every BeatInterval. A worker whose invocation overran its deadline but whose beat is
// fresh is busy, not frozen.
const (
	beatSize = slotSize
	// BeatInterval is how often a worker writes its beat.
	BeatInterval = 50 * time.Millisecond
)

// SlotsFileSize is the size of a slot file for n slots and the ring.
func SlotsFileSize(n int) int64 {
	return int64(n+RingEntries)*slotSize + AnswerEntries*answerSize + beatSize
}

// slotsIn tells how many slots a file of size bytes holds.
func slotsIn(size int) int {
	return (size-AnswerEntries*answerSize-beatSize)/slotSize - RingEntries
}

// beat is the beat's word in a mapped slot file.
func beat(mem []byte) *atomic.Int64 {
	return (*atomic.Int64)(unsafe.Pointer(&mem[len(mem)-beatSize]))
}

// Beat writes the beat every BeatInterval until ctx ends.
func (s *Slots) Beat(ctx context.Context) {
	t := time.NewTicker(BeatInterval)
	defer t.Stop()
	for {
		beat(s.mem).Store(time.Now().UnixMilli())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Beat returns when the worker last wrote its beat (zero before the first).
func (r *SlotReader) Beat() time.Time {
	if len(r.mem) < beatSize {
		return time.Time{}
	}
	if ms := beat(r.mem).Load(); ms != 0 {
		return time.UnixMilli(ms)
	}
	return time.Time{}
}

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
	n := slotsIn(len(mem))
	if n <= 0 {
		unmap(mem)
		return nil, errors.New("scheduler: slot file too small")
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
	writeID(s.mem[i*slotSize:(i+1)*slotSize], requestID)
	// The deadline is written last: a reader that sees it also sees the id.
	s.deadline(i).Store(deadline.UnixMilli())
	return i
}

// extend sets slot i's deadline (i may be -1: no slot).
func (s *Slots) extend(i int, deadline time.Time) {
	if i >= 0 {
		s.deadline(i).Store(deadline.UnixMilli())
	}
}

// entered records that the invocation's guest code is about to run.
func (s *Slots) entered(requestID string) {
	seq := s.seq.Add(1)
	off := (s.n + int((seq-1)%RingEntries)) * slotSize
	number := (*atomic.Uint64)(unsafe.Pointer(&s.mem[off]))
	number.Store(0)
	writeID(s.mem[off:off+slotSize], requestID)
	number.Store(seq)
}

// effectBit marks a ring entry that records an invocation's first host call with effects outside its
// sandbox, rather than its entry into guest code.
const effectBit = 1 << 63

// effected records that the invocation is about to make its first host call with effects (a post, a
// key-value write): from then on, running it again elsewhere could repeat them.
func (s *Slots) effected(requestID string) {
	seq := s.seq.Add(1)
	off := (s.n + int((seq-1)%RingEntries)) * slotSize
	number := (*atomic.Uint64)(unsafe.Pointer(&s.mem[off]))
	number.Store(0)
	writeID(s.mem[off:off+slotSize], requestID)
	number.Store(seq | effectBit)
}

// answered keeps the outcome of an invocation: its response, or the error code it failed with.
// Responses over MaxAnswerBytes are not kept.
func (s *Slots) answered(requestID, code string, body []byte) {
	if len(body) > MaxAnswerBytes || len(code) > 64 {
		return
	}
	seq := s.aseq.Add(1)
	off := (s.n+RingEntries)*slotSize + int((seq-1)%AnswerEntries)*answerSize
	entry := s.mem[off : off+answerSize]
	number := (*atomic.Uint64)(unsafe.Pointer(&entry[0]))
	number.Store(0)
	writeID(entry, requestID)
	entry[64] = byte(len(code))
	copy(entry[65:], code)
	binary.LittleEndian.PutUint32(entry[answerHeader-4:], uint32(len(body)))
	copy(entry[answerHeader:], body)
	number.Store(seq)
}

func writeID(entry []byte, id string) {
	if len(id) > MaxSlotRequestID {
		id = id[:MaxSlotRequestID]
	}
	entry[8] = byte(len(id))
	copy(entry[9:], id)
}

func readID(entry []byte) string {
	n := min(int(entry[8]), MaxSlotRequestID)
	return string(entry[9 : 9+n])
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

// Answer is the kept outcome of an invocation.
type Answer struct {
	RequestID string
	Code      string
	Body      []byte
}

// Answers lists the kept outcomes of recent invocations.
func (r *SlotReader) Answers() []Answer {
	slots := slotsIn(len(r.mem))
	if slots <= 0 {
		return nil
	}
	var out []Answer
	for i := range AnswerEntries {
		off := (slots+RingEntries)*slotSize + i*answerSize
		entry := r.mem[off : off+answerSize]
		if (*atomic.Uint64)(unsafe.Pointer(&entry[0])).Load() == 0 {
			continue
		}
		n := min(int(binary.LittleEndian.Uint32(entry[answerHeader-4:])), MaxAnswerBytes)
		out = append(out, Answer{
			RequestID: readID(entry),
			Code:      string(entry[65 : 65+min(int(entry[64]), 63)]),
			Body:      bytes.Clone(entry[answerHeader : answerHeader+n]),
		})
	}
	return out
}

// Running lists the invocations that hold a slot: started and not finished.
func (r *SlotReader) Running() []Running {
	var out []Running
	slots := slotsIn(len(r.mem))
	for i := range max(slots, 0) {
		off := i * slotSize
		d := (*atomic.Int64)(unsafe.Pointer(&r.mem[off])).Load()
		if d == 0 {
			continue
		}
		out = append(out, Running{RequestID: readID(r.mem[off : off+slotSize]), Deadline: time.UnixMilli(d)})
	}
	return out
}

// Entered lists the request ids in the ring: invocations whose guest code was entered recently.
func (r *SlotReader) Entered() []string {
	var out []string
	slots := slotsIn(len(r.mem))
	if slots <= 0 {
		return nil
	}
	for i := range RingEntries {
		off := (slots + i) * slotSize
		if n := (*atomic.Uint64)(unsafe.Pointer(&r.mem[off])).Load(); n == 0 || n&effectBit != 0 {
			continue
		}
		out = append(out, readID(r.mem[off:off+slotSize]))
	}
	return out
}

// Effected lists the request ids in the ring that made host calls with effects.
func (r *SlotReader) Effected() []string {
	var out []string
	slots := slotsIn(len(r.mem))
	if slots <= 0 {
		return nil
	}
	for i := range RingEntries {
		off := (slots + i) * slotSize
		if n := (*atomic.Uint64)(unsafe.Pointer(&r.mem[off])).Load(); n&effectBit == 0 {
			continue
		}
		out = append(out, readID(r.mem[off:off+slotSize]))
	}
	return out
}

// Close unmaps the table.
func (r *SlotReader) Close() error { return unmap(r.mem) }
