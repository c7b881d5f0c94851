package runtimes_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/runtimes"
)

// snapReport is what internal/testfix/testdata/snapinit answers.
type snapReport struct {
	Calls        int    `json:"calls"`
	Restored     bool   `json:"restored"`
	InitUnixNano int64  `json:"initUnixNano"`
	NowUnixNano  int64  `json:"nowUnixNano"`
	SinceInitNs  int64  `json:"sinceInitNs"`
	SleptNs      int64  `json:"sleptNs"`
	Frozen       uint64 `json:"frozen"`
	Reseeded     uint64 `json:"reseeded"`
	Runtime      uint64 `json:"runtime"`
	Crypto       uint64 `json:"crypto"`
	Env          string `json:"env"`
	Map          []int  `json:"map"`
}

func invokeSnap(t *testing.T, inst *runtimes.Instance) snapReport {
	t.Helper()
	out, err := inst.Invoke(context.Background(), runtimes.Meta{RequestID: "r"}, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var r snapReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return r
}

// TestSnapshot starts instances of a function that reads the clock and random numbers while it
// initialises: the first initialises and is saved; the next start from the snapshot. What the
// snapshot freezes is what docs/abi.md says, and nothing more.
func TestSnapshot(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	m := compile(t, e, testfix.Reactor(t, "internal/testfix/testdata/snapinit"))
	if !m.Snapshottable() {
		t.Fatal("a Go reactor is not snapshottable")
	}
	cfg := runtimes.InstanceConfig{FunctionName: "snap", MemoryMB: 128, Env: map[string]string{"SNAP_ENV": "one"}, Snapshot: true}
	var insts []*runtimes.Instance
	var first []snapReport
	for range 3 {
		inst, err := m.Instantiate(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Close(ctx)
		insts = append(insts, inst)
		time.Sleep(5 * time.Millisecond) // the clock moves on between the snapshot and the restores
	}
	for i, inst := range insts {
		if want := i > 0; inst.Restored() != want {
			t.Fatalf("instance %d: Restored() = %v, want %v", i, inst.Restored(), want)
		}
		r := invokeSnap(t, inst)
		first = append(first, r)
		if r.Restored != (i > 0) {
			t.Errorf("instance %d: the AfterRestore hook ran: %v, want %v", i, r.Restored, i > 0)
		}
		// Each instance starts as the snapshot was: initialised, never invoked.
		if r.Calls != 1 {
			t.Errorf("instance %d: first invocation counts %d calls, want 1", i, r.Calls)
		}
		if r.Env != "one" {
			t.Errorf("instance %d: SNAP_ENV = %q", i, r.Env)
		}
		// Clocks run on: the wall clock is read anew, the monotonic clock is continuous and sleeps
		// last as long as asked.
		if r.NowUnixNano <= r.InitUnixNano || r.SinceInitNs <= 0 {
			t.Errorf("instance %d: now %d, initialised at %d, %d ns since: the clock did not move on", i, r.NowUnixNano, r.InitUnixNano, r.SinceInitNs)
		}
		if r.SleptNs < int64(2*time.Millisecond) {
			t.Errorf("instance %d: a 2 ms sleep took %d ns", i, r.SleptNs)
		}
		if again := invokeSnap(t, inst); again.Calls != 2 {
			t.Errorf("instance %d: second invocation counts %d calls, want 2", i, again.Calls)
		}
	}
	a, b, c := first[0], first[1], first[2]
	// Frozen: the time of initialisation, a generator seeded then, and the Go runtime's own random
	// state (math/rand's top-level functions, map iteration order).
	if b.InitUnixNano != a.InitUnixNano || c.InitUnixNano != a.InitUnixNano {
		t.Errorf("initialisation times %d %d %d: restored instances should share the snapshot's", a.InitUnixNano, b.InitUnixNano, c.InitUnixNano)
	}
	if b.Frozen != a.Frozen || c.Frozen != a.Frozen {
		t.Errorf("a generator seeded at initialisation gave %d %d %d: the snapshot should freeze it", a.Frozen, b.Frozen, c.Frozen)
	}
	if b.Runtime != a.Runtime || c.Runtime != a.Runtime || !slices.Equal(b.Map, a.Map) {
		t.Errorf("the Go runtime's random state differs between instances of one snapshot (%d %d %d, %v %v): docs/abi.md says it repeats", a.Runtime, b.Runtime, c.Runtime, a.Map, b.Map)
	}
	// Not frozen: what AfterRestore draws again, and crypto/rand.
	if b.Reseeded == a.Reseeded || c.Reseeded == b.Reseeded || c.Reseeded == a.Reseeded {
		t.Errorf("a generator seeded again in AfterRestore gave %d %d %d", a.Reseeded, b.Reseeded, c.Reseeded)
	}
	if b.Crypto == a.Crypto || c.Crypto == b.Crypto {
		t.Errorf("crypto/rand gave %d %d %d", a.Crypto, b.Crypto, c.Crypto)
	}

	// Another configuration has its own snapshot: the environment is read at initialisation.
	other := cfg
	other.Env = map[string]string{"SNAP_ENV": "two"}
	inst, err := m.Instantiate(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	if inst.Restored() {
		t.Error("an instance with another environment started from the first one's snapshot")
	}
	if r := invokeSnap(t, inst); r.Env != "two" {
		t.Errorf("SNAP_ENV = %q, want two", r.Env)
	}

	// Without Snapshot, every instance initialises: its own seeds.
	plain := cfg
	plain.Snapshot = false
	p1, err := m.Instantiate(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close(ctx)
	p2, err := m.Instantiate(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close(ctx)
	if p1.Restored() || p2.Restored() {
		t.Fatal("an instance without Snapshot was restored")
	}
	if r1, r2 := invokeSnap(t, p1), invokeSnap(t, p2); r1.Frozen == r2.Frozen || r1.Runtime == r2.Runtime {
		t.Errorf("two initialised instances drew the same numbers: %d %d, %d %d", r1.Frozen, r2.Frozen, r1.Runtime, r2.Runtime)
	}
}

// TestSnapshotAnswersAsInitialised: an instance started from a snapshot answers every event as an
// instance that initialised itself does.
func TestSnapshotAnswersAsInitialised(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	m := compile(t, e, testfix.Reactor(t, "samples/echo"))
	cfg := runtimes.InstanceConfig{FunctionName: "echo", MemoryMB: 128}
	plain, err := m.Instantiate(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(ctx)
	cfg.Snapshot = true
	for i := range 3 {
		inst, err := m.Instantiate(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if inst.Restored() != (i > 0) {
			t.Fatalf("instance %d: Restored() = %v", i, inst.Restored())
		}
		for n := range 3 {
			ev := httpEvent(t, map[string]string{"x-n": strings.Repeat("n", n*1000)})
			want, err := plain.Invoke(ctx, runtimes.Meta{RequestID: "r"}, ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "r"}, ev)
			if err != nil {
				t.Fatalf("instance %d: %v", i, err)
			}
			if string(got) != string(want) {
				t.Fatalf("instance %d answered\n%s\nwhere an initialised one answered\n%s", i, got, want)
			}
		}
		inst.Close(ctx)
	}
}
