package scheduler

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestSlotsAreReadableFromAnotherMapping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w1.slots")
	if err := CreateSlotsFile(path, 4); err != nil {
		t.Fatal(err)
	}
	w, err := OpenSlots(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := OpenSlotReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if w.Len() != 4 {
		t.Fatalf("Len %d, want 4", w.Len())
	}
	deadline := time.Now().Add(time.Second).Truncate(time.Millisecond)
	a := w.acquire("req-a", deadline)
	b := w.acquire("a-request-id-longer-than-a-slot-can-hold-0123456789abcdefghij", deadline)
	w.entered("req-a")
	w.entered("req-c")
	w.effected("req-c")
	running := r.Running()
	if len(running) != 2 || running[0].RequestID != "req-a" || !running[0].Deadline.Equal(deadline) ||
		running[1].RequestID != "a-request-id-longer-than-a-slot-can-hold-0123456789abcdefghij"[:MaxSlotRequestID] {
		t.Fatalf("running %+v", running)
	}
	w.release(a)
	w.release(b)
	if got := r.Running(); len(got) != 0 {
		t.Fatalf("after release: %+v", got)
	}
	if got := r.Entered(); !slices.Equal(got, []string{"req-a", "req-c"}) {
		t.Fatalf("entered %q", got)
	}
	if got := r.Effected(); !slices.Equal(got, []string{"req-c"}) {
		t.Fatalf("effected %q", got)
	}
	w.answered("req-a", "", []byte(`{"ok":true}`))
	w.answered("req-b", "function-error", nil)
	w.answered("req-huge", "", make([]byte, MaxAnswerBytes+1))
	answers := r.Answers()
	if len(answers) != 2 || answers[0].RequestID != "req-a" || string(answers[0].Body) != `{"ok":true}` || answers[0].Code != "" ||
		answers[1].RequestID != "req-b" || answers[1].Code != "function-error" || len(answers[1].Body) != 0 {
		t.Fatalf("answers %+v", answers)
	}
	// The slots are all free again, and the ring wraps around keeping the newest entries.
	for i := range 4 {
		if w.acquire("x", deadline) < 0 {
			t.Fatalf("slot %d not free", i)
		}
	}
	if w.acquire("y", deadline) != -1 {
		t.Fatal("a fifth slot was handed out")
	}
	for range RingEntries + 10 {
		w.entered("later")
	}
	entered := r.Entered()
	if len(entered) != RingEntries || slices.Contains(entered, "req-a") {
		t.Fatalf("ring holds %d entries (req-a still there: %v)", len(entered), slices.Contains(entered, "req-a"))
	}
}
