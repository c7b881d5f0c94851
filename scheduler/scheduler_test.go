package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/runtimes"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) records(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

func load(t *testing.T, logs *lockedBuffer, fns ...Function) *Scheduler {
	t.Helper()
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewJSONHandler(logs, nil))
	}
	return started(t, Config{Functions: fns, Logger: log})
}

func wasm(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(testfix.Reactor(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func invoke(t *testing.T, s *Scheduler, fn, requestID, event string) []byte {
	t.Helper()
	out, err := s.Handle(context.Background(), bus.Invocation{Function: fn, RequestID: requestID, Payload: []byte(event)})
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	return out
}

func TestWarmReuseAndColdStarts(t *testing.T) {
	s := load(t, nil, Function{Name: "hello", Wasm: wasm(t, "samples/hello"), MemoryMB: 128, Timeout: time.Second, MinWarm: 1})
	if st := s.Stats()["hello"]; st.Idle != 1 || st.ColdStarts != 0 {
		t.Fatalf("after load: %+v, want one warm instance and no cold start", st)
	}
	for range 5 {
		invoke(t, s, "hello", "r", `{"version":"2.0"}`)
	}
	if st := s.Stats()["hello"]; st.Invocations != 5 || st.ColdStarts != 0 || st.Idle != 1 {
		t.Fatalf("after 5 serial invocations: %+v, want all warm on the one instance", st)
	}
	// Three at once need two more instances: cold starts, which then stay warm.
	p := s.pools["hello"]
	var taken []sandbox
	for range 3 {
		sb, err := p.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, sb)
	}
	if st := s.Stats()["hello"]; st.ColdStarts != 2 || st.Busy != 3 || st.Idle != 0 {
		t.Fatalf("with three taken: %+v", st)
	}
	for _, sb := range taken {
		p.put(context.Background(), sb, false)
	}
	if st := s.Stats()["hello"]; st.Idle != 3 || st.Busy != 0 {
		t.Fatalf("after returning them: %+v", st)
	}
	invoke(t, s, "hello", "r", `{"version":"2.0"}`)
	if st := s.Stats()["hello"]; st.ColdStarts != 2 {
		t.Fatalf("a warm instance was available, yet: %+v", st)
	}
}

func TestIdleInstancesAreReapedDownToMinWarm(t *testing.T) {
	s := load(t, nil, Function{Name: "hello", Wasm: wasm(t, "samples/hello"), MemoryMB: 128, Timeout: time.Second, MinWarm: 1, IdleTimeout: time.Minute})
	p := s.pools["hello"]
	var taken []sandbox
	for range 3 {
		sb, err := p.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, sb)
	}
	for _, sb := range taken {
		p.put(context.Background(), sb, false)
	}
	before := s.Stats()["hello"].Idle
	if n := p.reap(context.Background(), time.Now(), time.Minute); n != 0 {
		t.Fatalf("reaped %d fresh instances", n)
	}
	if n := p.reap(context.Background(), time.Now().Add(2*time.Minute), time.Minute); n != before-1 {
		t.Fatalf("reaped %d of %d idle instances, want all but the one warm", n, before)
	}
	if st := s.Stats()["hello"]; st.Idle != 1 {
		t.Fatalf("after reaping: %+v", st)
	}
	invoke(t, s, "hello", "r", `{}`)
}

// A SnapStart function's Go module can be snapshotted: loading it starts one instance, which takes
// the snapshot, so that no invocation waits for the initialisation; later instances start from it
// and run as the first does.
func TestSnapStartStartsOneInstanceAtLoad(t *testing.T) {
	s := load(t, nil, Function{Name: "hello", Wasm: wasm(t, "samples/hello"), MemoryMB: 128, Timeout: time.Second, SnapStart: true})
	p := s.pools["hello"]
	if !p.mod.snapshottable() {
		t.Fatal("the hello sample's module cannot be snapshotted")
	}
	if st := s.Stats()["hello"]; st.Idle != 1 || st.ColdStarts != 0 {
		t.Fatalf("after load: %+v, want the one instance started at load and no cold start", st)
	}
	first := invoke(t, s, "hello", "r1", `{"version":"2.0","rawPath":"/"}`)
	if !bytes.Contains(first, []byte("hello from gatehouse")) {
		t.Fatalf("the first invocation answered %s", first)
	}
	// Two at once: the second is a cold start, from the snapshot.
	ctx := context.Background()
	a, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.put(ctx, a, false)
	p.put(ctx, b, false)
	if st := s.Stats()["hello"]; st.ColdStarts != 1 || st.Idle != 2 {
		t.Fatalf("with two taken: %+v", st)
	}
	// The most recently returned (the one started from the snapshot) is used first.
	if again := invoke(t, s, "hello", "r2", `{"version":"2.0","rawPath":"/"}`); !bytes.Equal(again, first) {
		t.Errorf("an instance started from the snapshot answered\n%s\nthe first answered\n%s", again, first)
	}
}

func TestUnknownFunction(t *testing.T) {
	s := load(t, nil)
	_, err := s.Handle(context.Background(), bus.Invocation{Function: "nope", RequestID: "r"})
	if bus.CodeOf(err) != bus.CodeFunctionNotFound {
		t.Fatalf("err %v, want function-not-found", err)
	}
}

func TestFunctionOutputBecomesTaggedRecords(t *testing.T) {
	logs := &lockedBuffer{}
	s := load(t, logs, Function{Name: "chatty", ID: "fid", Version: 7, Wasm: wasm(t, "internal/testfix/testdata/chatty"), MemoryMB: 128, Timeout: 5 * time.Second})
	var wg sync.WaitGroup
	for _, id := range []string{"req-a", "req-b", "req-c"} {
		wg.Add(1)
		go func() { defer wg.Done(); invoke(t, s, "chatty", id, `{"lines":50,"size":40,"tail":"no newline"}`) }()
	}
	wg.Wait()
	invoke(t, s, "chatty", "req-err", `{"lines":2,"size":10,"stderr":true}`)
	perRequest := map[string][]string{}
	for _, r := range logs.records(t) {
		if r["function"] != "chatty" || r["version"] != "7" {
			t.Fatalf("record without function and version: %v", r)
		}
		id, _ := r["request_id"].(string)
		msg, _ := r["msg"].(string)
		if r["stream"] == "stderr" && id != "req-err" {
			t.Fatalf("stderr record from %s: %v", id, r)
		}
		perRequest[id] = append(perRequest[id], msg)
	}
	for _, id := range []string{"req-a", "req-b", "req-c"} {
		lines := perRequest[id]
		if len(lines) != 51 || lines[50] != "no newline" {
			t.Fatalf("%s: %d records, want 50 lines and the unterminated tail; last %q", id, len(lines), lines[len(lines)-1])
		}
		for i, l := range lines[:50] {
			if !strings.HasPrefix(l, strings.Split(l, ":")[0]+":") || len(l) != 40 || !strings.HasPrefix(l, itoa(i)+":") {
				t.Fatalf("%s line %d: %q (lines of one invocation must stay whole and in order)", id, i, l)
			}
		}
	}
	if len(perRequest["req-err"]) != 2 {
		t.Fatalf("stderr records: %v", perRequest["req-err"])
	}
}

func TestFunctionOutputIsBounded(t *testing.T) {
	logs := &lockedBuffer{}
	s := load(t, logs, Function{Name: "chatty", Wasm: wasm(t, "internal/testfix/testdata/chatty"), MemoryMB: 128, Timeout: 5 * time.Second})
	invoke(t, s, "chatty", "loud", `{"lines":2000,"size":1000}`) // 2 MB of output
	total, truncated := 0, false
	for _, r := range logs.records(t) {
		if msg, _ := r["msg"].(string); r["request_id"] == "loud" && r["stream"] == "stdout" {
			total += len(msg) + 1
		}
		if r["msg"] == "function output truncated" {
			truncated = true
		}
	}
	if total > maxLogBytes+1 || total < maxLogBytes/2 || !truncated {
		t.Fatalf("logged %d bytes (limit %d), truncation reported %v", total, maxLogBytes, truncated)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// Sync loads live versions before they take traffic, routes unversioned calls to the newest, and
// retires the versions no longer live: they finish, then close once unused; a call that names one
// later loads it again through the Loader, once however many wait.
func TestSyncLoadsRetiresAndReloads(t *testing.T) {
	hello := wasm(t, "samples/hello")
	v := func(n int) Function {
		return Function{Name: "hello", ID: "h1", Version: n, Wasm: hello, MemoryMB: 128, Timeout: time.Second, MinWarm: 1}
	}
	var loads sync.Map
	s, err := New(Config{
		RetireAfter: time.Minute,
		Loader: func(ctx context.Context, name, id string, version int) (Function, error) {
			n, _ := loads.LoadOrStore(version, new(int))
			*(n.(*int))++
			if id != "h1" || version > 3 {
				return Function{}, errors.New("no such version")
			}
			return v(version), nil
		},
	}, runtimes.Config{CacheDir: testfix.CompileCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	ctx := context.Background()
	if err := s.Sync(ctx, []Function{v(1)}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats()["hello"]; st.Idle != 1 {
		t.Fatalf("version 1 not warmed before traffic: %+v", st)
	}
	call := func(version int) error {
		inv := bus.Invocation{Function: "hello", RequestID: "r", Payload: []byte(`{}`)}
		if version > 0 {
			inv.FunctionID, inv.Version = "h1", version
		}
		_, err := s.Handle(ctx, inv)
		return err
	}
	if err := call(0); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx, []Function{v(2)}); err != nil {
		t.Fatal(err)
	}
	if got := s.Loaded(); strings.Join(got, " ") != "hello:1 hello:2" {
		t.Fatalf("loaded %v, want the retired version 1 kept until unused and version 2", got)
	}
	if p := s.byName["hello"]; p.fn.Version != 2 {
		t.Fatalf("unversioned calls go to version %d, want 2", p.fn.Version)
	}
	// Version 1 is retired: its idle instance goes, then the version itself.
	later := time.Now().Add(2 * time.Minute)
	s.reap(ctx, later)
	s.reap(ctx, later)
	if got := s.Loaded(); strings.Join(got, " ") != "hello:2" {
		t.Fatalf("loaded %v after the retired version went unused", got)
	}
	if st := s.Stats()["hello"]; st.Idle != 1 {
		t.Fatalf("the live version lost its warm instance: %+v", st)
	}
	// A call naming version 1, or 3, loads it, once for many concurrent callers.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- call(1 + 2*(i%2)) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int{1, 3} {
		if c, ok := loads.Load(n); !ok || *(c.(*int)) != 1 {
			t.Fatalf("version %d loaded %v times, want once", n, c)
		}
	}
	if err := call(9); bus.CodeOf(err) != bus.CodeFunctionNotFound {
		t.Fatalf("a version the loader cannot find: %v, want function-not-found", err)
	}
}

func TestLogSinkGetsEveryLine(t *testing.T) {
	var mu sync.Mutex
	var all []LogRecord
	s, err := New(Config{
		Functions: []Function{{Name: "chatty", ID: "c1", Version: 4, Wasm: wasm(t, "internal/testfix/testdata/chatty"), MemoryMB: 128}},
		LogSink:   func(r LogRecord) { mu.Lock(); all = append(all, r); mu.Unlock() },
	}, runtimes.Config{CacheDir: testfix.CompileCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	invoke(t, s, "chatty", "req-1", `{"lines":3,"size":10,"stderr":true}`)
	mu.Lock()
	sunk := slices.Clone(all)
	mu.Unlock()
	// Lambda's START, the function's three lines, END and REPORT.
	if len(sunk) != 6 {
		t.Fatalf("sink got %d records, want 6: %+v", len(sunk), sunk)
	}
	for i, r := range sunk {
		if r.Function != "chatty" || r.Version != 4 || r.RequestID != "req-1" || r.Time.IsZero() {
			t.Fatalf("record %+v", r)
		}
		if i >= 1 && i <= 3 && (r.Stream != "stderr" || len(r.Message) != 10) {
			t.Fatalf("output record %+v", r)
		}
	}
	if sunk[0].Stream != "platform" || sunk[0].Message != "START RequestId: req-1 Version: 4" || sunk[4].Message != "END RequestId: req-1" {
		t.Errorf("START and END: %+v %+v", sunk[0], sunk[4])
	}
	report := regexp.MustCompile(`^REPORT RequestId: req-1\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB(\tMax Memory Used: \d+ MB)?\tInit Duration: \d+\.\d\d ms$`)
	if !report.MatchString(sunk[5].Message) {
		t.Errorf("REPORT of a cold start: %q", sunk[5].Message)
	}
	// A warm invocation that writes nothing and succeeds writes no platform lines; one that writes
	// has them, without an init duration.
	invoke(t, s, "chatty", "req-2", `{"lines":0}`)
	invoke(t, s, "chatty", "req-3", `{"lines":1,"size":4}`)
	mu.Lock()
	defer mu.Unlock()
	var rest []string
	for _, r := range all[len(sunk):] {
		rest = append(rest, r.RequestID+" "+strings.SplitN(r.Message, "\t", 2)[0])
	}
	if want := []string{"req-3 START RequestId: req-3 Version: 4", "req-3 0:xx", "req-3 END RequestId: req-3", "req-3 REPORT RequestId: req-3"}; !slices.Equal(rest, want) {
		t.Errorf("records after the first invocation: %q, want %q", rest, want)
	}
	if last := all[len(all)-1].Message; strings.Contains(last, "Init Duration") {
		t.Errorf("REPORT of a warm invocation: %q", last)
	}
}
