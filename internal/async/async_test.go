package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/testfix/jstest"
)

// fakeFunctions stands for the registry and the workers: each function is a Go func.
type fakeFunctions struct {
	mu       sync.Mutex
	handlers map[string]func(payload []byte) ([]byte, error)
	settings map[string]spec.AsyncSettings
	calls    map[string][]string // request ids in call order, by function
	running  atomic.Int32
	most     atomic.Int32
}

func newFake() *fakeFunctions {
	return &fakeFunctions{handlers: map[string]func([]byte) ([]byte, error){}, settings: map[string]spec.AsyncSettings{}, calls: map[string][]string{}}
}

func (f *fakeFunctions) invoke(_ context.Context, function, _ string, payload []byte, requestID string) ([]byte, int, error) {
	f.mu.Lock()
	h, ok := f.handlers[function]
	f.calls[function] = append(f.calls[function], requestID)
	f.mu.Unlock()
	if !ok {
		return nil, 0, fmt.Errorf("resolving %s: %w", function, functions.ErrNotFound)
	}
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.most.Load()
		if n <= m || f.most.CompareAndSwap(m, n) {
			break
		}
	}
	out, err := h(payload)
	return out, 3, err
}

func (f *fakeFunctions) set(function string, a spec.AsyncSettings, h func([]byte) ([]byte, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[function] = h
	f.settings[function] = a
}

func (f *fakeFunctions) settingsOf(function, _ string) (spec.AsyncSettings, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.settings[function]
	if !ok {
		return a, fmt.Errorf("resolving %s: %w", function, functions.ErrNotFound)
	}
	return a, nil
}

func (f *fakeFunctions) callsOf(function string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls[function]...)
}

func fastSettings() spec.AsyncSettings {
	a := spec.DefaultAsyncSettings()
	a.RetryDelay = spec.Duration(100 * time.Millisecond)
	return a
}

type env struct {
	js   jetstream.JetStream
	fake *fakeFunctions
	url  string
}

func newEnv(t *testing.T) *env {
	ns := jstest.Start(t, "")
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &env{js: js, fake: newFake(), url: ns.ClientURL()}
}

// start opens a queue and runs it until the test ends (or stop is called).
func (e *env) start(t *testing.T, mod func(*Config)) (q *Queue, stop func()) {
	cfg := Config{JS: e.js, Stack: "t", Invoke: e.fake.invoke, Settings: e.fake.settingsOf,
		FunctionARN: func(fn string) string { return "arn:aws:lambda:us-east-1:000000000000:function:" + fn }}
	if mod != nil {
		mod(&cfg)
	}
	q, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return q, stop
}

// records collects what a destination function receives.
type records struct {
	mu  sync.Mutex
	got []Record
}

func (r *records) handler(payload []byte) ([]byte, error) {
	var rec Record
	if err := json.Unmarshal(payload, &rec); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.got = append(r.got, rec)
	r.mu.Unlock()
	return nil, nil
}

func (r *records) wait(t *testing.T, n int) []Record {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		got := append([]Record(nil), r.got...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the destination received %d records, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSuccessGoesToItsDestination(t *testing.T) {
	e := newEnv(t)
	var successes records
	a := fastSettings()
	a.OnSuccess = "function:done"
	e.fake.set("work", a, func(p []byte) ([]byte, error) { return []byte(`{"doubled":` + string(p) + `}`), nil })
	e.fake.set("done", fastSettings(), successes.handler)
	q, _ := e.start(t, nil)
	for i := range 20 {
		if err := q.Enqueue(context.Background(), Event{Function: "work", RequestID: "req-" + strconv.Itoa(i), Payload: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	got := successes.wait(t, 20)
	seen := map[string]bool{}
	for _, r := range got {
		if r.RequestContext.Condition != "Success" || r.RequestContext.ApproximateInvokeCount != 1 || r.ResponseContext.StatusCode != 200 ||
			r.ResponseContext.FunctionError != "" || r.ResponseContext.ExecutedVersion != "3" || r.Version != "1.0" {
			t.Errorf("record %+v", r)
		}
		if r.RequestContext.FunctionARN != "arn:aws:lambda:us-east-1:000000000000:function:work:$LATEST" {
			t.Errorf("functionArn %q", r.RequestContext.FunctionARN)
		}
		want := `{"doubled":` + string(r.RequestPayload) + `}`
		if string(r.ResponsePayload) != want {
			t.Errorf("responsePayload %s, want %s", r.ResponsePayload, want)
		}
		seen[r.RequestContext.RequestID] = true
	}
	if len(seen) != 20 {
		t.Errorf("%d distinct request ids among %d records", len(seen), len(got))
	}
}

func TestFailureIsRetriedThenGoesToItsDestination(t *testing.T) {
	e := newEnv(t)
	var failures records
	a := fastSettings()
	a.OnFailure = "arn:aws:lambda:us-east-1:000000000000:function:failed"
	e.fake.set("flaky", a, func([]byte) ([]byte, error) {
		return nil, &bus.RemoteError{Code: bus.CodeFunctionError, Detail: `{"errorType":"Boom","errorMessage":"it broke"}`}
	})
	e.fake.set("failed", fastSettings(), failures.handler)
	q, _ := e.start(t, nil)
	if err := q.Enqueue(context.Background(), Event{Function: "flaky", RequestID: "r1", Payload: []byte(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	rec := failures.wait(t, 1)[0]
	if rec.RequestContext.Condition != "RetriesExhausted" || rec.RequestContext.ApproximateInvokeCount != 3 || rec.ResponseContext.FunctionError != "Unhandled" {
		t.Errorf("record %+v", rec)
	}
	if string(rec.RequestPayload) != `{"x":1}` {
		t.Errorf("requestPayload %s", rec.RequestPayload)
	}
	var f bus.FunctionFailure
	if json.Unmarshal(rec.ResponsePayload, &f) != nil || f.ErrorType != "Boom" || f.ErrorMessage != "it broke" {
		t.Errorf("responsePayload %s", rec.ResponsePayload)
	}
	if calls := e.fake.callsOf("flaky"); len(calls) != 3 {
		t.Errorf("the function ran %d times, want 3 (one and two retries): %v", len(calls), calls)
	}
}

func TestFailureWithoutDestinationIsADeadLetter(t *testing.T) {
	e := newEnv(t)
	a := fastSettings()
	a.MaximumRetryAttempts = 0
	e.fake.set("bad", a, func([]byte) ([]byte, error) { return nil, bus.ErrFunctionTimeout })
	q, _ := e.start(t, nil)
	if err := q.Enqueue(context.Background(), Event{Function: "bad", RequestID: "r1", Payload: []byte(`"hi"`)}); err != nil {
		t.Fatal(err)
	}
	var stats []Stats
	waitFor(t, "the dead letter is counted", func() bool {
		var err error
		stats, err = q.Stats(context.Background())
		return err == nil && len(stats) == 1 && stats[0].DeadLetters == 1 && stats[0].InFlight == 0
	})
	if len(e.fake.callsOf("bad")) != 1 {
		t.Errorf("ran %d times, want once (no retries)", len(e.fake.callsOf("bad")))
	}
	m, err := e.js.Stream(context.Background(), DeadLetterStreamName("t"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := m.GetLastMsgForSubject(context.Background(), "gh.t.asyncdead.bad")
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	if err := json.Unmarshal(raw.Data, &rec); err != nil || rec.RequestContext.Condition != "RetriesExhausted" || string(rec.RequestPayload) != `"hi"` {
		t.Errorf("dead letter %s (%v)", raw.Data, err)
	}
	if raw.Header.Get(hdrCondition) != "RetriesExhausted" || raw.Header.Get(hdrRequestID) != "r1" {
		t.Errorf("dead letter headers %v", raw.Header)
	}
}

func TestThrottledIsNotAnAttempt(t *testing.T) {
	e := newEnv(t)
	var successes records
	a := fastSettings()
	a.MaximumRetryAttempts = 0
	a.OnSuccess = "function:done"
	var n atomic.Int32
	e.fake.set("busy", a, func([]byte) ([]byte, error) {
		if n.Add(1) <= 2 {
			return nil, bus.ErrThrottled
		}
		return []byte(`"ok"`), nil
	})
	e.fake.set("done", fastSettings(), successes.handler)
	q, _ := e.start(t, nil)
	if err := q.Enqueue(context.Background(), Event{Function: "busy", RequestID: "r1", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	rec := successes.wait(t, 1)[0]
	if rec.RequestContext.Condition != "Success" || rec.RequestContext.ApproximateInvokeCount != 1 {
		t.Errorf("record %+v: two throttles must not count as attempts", rec)
	}
}

func TestOldEventIsGivenUp(t *testing.T) {
	e := newEnv(t)
	var failures records
	a := fastSettings()
	a.MaximumEventAge = spec.Duration(time.Minute)
	a.OnFailure = "function:failed"
	e.fake.set("slowq", a, func([]byte) ([]byte, error) { return []byte(`1`), nil })
	e.fake.set("failed", fastSettings(), failures.handler)
	q, _ := e.start(t, nil)
	if err := q.ensureConsumer(context.Background(), "slowq"); err != nil {
		t.Fatal(err)
	}
	// An event queued two minutes ago, as after a long outage.
	m := nats.NewMsg("gh.t.async.slowq")
	m.Data = []byte(`{}`)
	m.Header.Set(hdrRequestID, "old")
	m.Header.Set(hdrAttempt, "0")
	m.Header.Set(hdrQueued, strconv.FormatInt(time.Now().Add(-2*time.Minute).UnixMilli(), 10))
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	rec := failures.wait(t, 1)[0]
	if rec.RequestContext.Condition != "EventAgeExceeded" || rec.RequestContext.RequestID != "old" {
		t.Errorf("record %+v", rec)
	}
	if calls := e.fake.callsOf("slowq"); len(calls) != 0 {
		t.Errorf("an event past its age ran: %v", calls)
	}
}

func TestUnknownFunctionIsADeadLetter(t *testing.T) {
	e := newEnv(t)
	q, _ := e.start(t, nil)
	if err := q.Enqueue(context.Background(), Event{Function: "nosuch", RequestID: "r1", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dead letter is counted", func() bool {
		stats, err := q.Stats(context.Background())
		return err == nil && len(stats) == 1 && stats[0].DeadLetters == 1
	})
}

func TestConcurrencyIsBounded(t *testing.T) {
	e := newEnv(t)
	var done atomic.Int32
	e.fake.set("a", fastSettings(), func([]byte) ([]byte, error) { time.Sleep(5 * time.Millisecond); done.Add(1); return nil, nil })
	e.fake.set("b", fastSettings(), func([]byte) ([]byte, error) { time.Sleep(5 * time.Millisecond); done.Add(1); return nil, nil })
	q, _ := e.start(t, func(c *Config) { c.Concurrency = 3 })
	for i := range 60 {
		fn := "a"
		if i%2 == 1 {
			fn = "b"
		}
		if err := q.Enqueue(context.Background(), Event{Function: fn, RequestID: "r" + strconv.Itoa(i), Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every event ran", func() bool { return done.Load() == 60 })
	if m := e.fake.most.Load(); m > 3 || m < 2 {
		t.Errorf("at most %d invocations ran at once, want 2 or 3 (the limit is 3)", m)
	}
}

// An event taken by a node that stops answering runs again on another once its AckWait passes;
// nothing queued is lost.
func TestEventsOfAStoppedNodeRunElsewhere(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	var started, finished atomic.Int32
	e.fake.set("hang", fastSettings(), func([]byte) ([]byte, error) {
		if started.Add(1) <= 2 {
			<-release // the first node's two invocations never end while it runs
		}
		finished.Add(1)
		return nil, nil
	})
	// A first node, with its own connection, that takes the events then goes silent.
	nc1, err := nats.Connect(e.url)
	if err != nil {
		t.Fatal(err)
	}
	js1, _ := jetstream.New(nc1)
	q1, err := Open(context.Background(), Config{JS: js1, Stack: "t", Invoke: e.fake.invoke, Settings: e.fake.settingsOf, Concurrency: 2, AckWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	go q1.Run(ctx1)
	for i := range 5 {
		if err := q1.Enqueue(context.Background(), Event{Function: "hang", RequestID: "r" + strconv.Itoa(i), Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the first node runs two", func() bool { return started.Load() == 2 })
	// The node vanishes: its connection closes mid-invocation (as a SIGKILL does).
	cancel1()
	nc1.Close()
	// A second node takes over.
	_, _ = e.start(t, func(c *Config) { c.AckWait = time.Second })
	waitFor(t, "every event ran on the second node", func() bool { return finished.Load() >= 5 })
	close(release)
	waitFor(t, "the first node's hung invocations returned", func() bool { return finished.Load() >= 7 })
	if s := started.Load(); s != 7 {
		t.Errorf("%d invocations, want 7: five events, two of them run again after their node vanished", s)
	}
}

func TestTooLargeAndFull(t *testing.T) {
	e := newEnv(t)
	e.fake.set("f", fastSettings(), func([]byte) ([]byte, error) { return nil, nil })
	cfg := Config{JS: e.js, Stack: "t", Invoke: e.fake.invoke, Settings: e.fake.settingsOf, MaxBytes: 64 << 10}
	q, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(context.Background(), Event{Function: "f", RequestID: "big", Payload: make([]byte, spec.MaxAsyncPayload+1)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("an event over 1 MB: %v, want ErrTooLarge", err)
	}
	// Not run: the queue fills up.
	var full error
	for i := range 100 {
		if full = q.Enqueue(context.Background(), Event{Function: "f", RequestID: "r" + strconv.Itoa(i), Payload: make([]byte, 4<<10)}); full != nil {
			break
		}
	}
	if !errors.Is(full, ErrQueueFull) {
		t.Errorf("queueing past MaxBytes: %v, want ErrQueueFull", full)
	}
}

func TestRedrive(t *testing.T) {
	e := newEnv(t)
	var fail atomic.Bool
	fail.Store(true)
	var ran atomic.Int32
	a := fastSettings()
	a.MaximumRetryAttempts = 0
	e.fake.set("flaky", a, func(p []byte) ([]byte, error) {
		if fail.Load() {
			return nil, bus.ErrFunctionError
		}
		ran.Add(1)
		return p, nil
	})
	q, _ := e.start(t, nil)
	for i, p := range []string{`{"i":1}`, `not json`, ``} {
		if err := q.Enqueue(context.Background(), Event{Function: "flaky", RequestID: "r" + strconv.Itoa(i), Payload: []byte(p)}); err != nil {
			t.Fatal(err)
		}
	}
	deadLetters := func() uint64 {
		stats, err := q.Stats(context.Background())
		if err != nil || len(stats) == 0 {
			return 0
		}
		return stats[0].DeadLetters
	}
	waitFor(t, "three dead letters", func() bool { return deadLetters() == 3 })
	fail.Store(false)
	n, err := q.Redrive(context.Background(), "flaky")
	if err != nil || n != 3 {
		t.Fatalf("Redrive: %d, %v; want 3", n, err)
	}
	waitFor(t, "the re-driven events run", func() bool { return ran.Load() == 3 })
	if d := deadLetters(); d != 0 {
		t.Errorf("%d dead letters left after a re-drive", d)
	}
	if n, err := q.Redrive(context.Background(), "flaky"); err != nil || n != 0 {
		t.Errorf("a second Redrive: %d, %v; want 0", n, err)
	}
	// An event re-driven that fails again is a dead letter again (not taken for a duplicate of its
	// first one).
	fail.Store(true)
	if err := q.Enqueue(context.Background(), Event{Function: "flaky", RequestID: "r9", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new dead letter", func() bool { return deadLetters() == 1 })
	if n, err := q.Redrive(context.Background(), "flaky"); err != nil || n != 1 {
		t.Fatalf("Redrive: %d, %v; want 1", n, err)
	}
	waitFor(t, "the re-driven event to fail again", func() bool {
		stats, err := q.Stats(context.Background())
		return err == nil && len(stats) == 1 && stats[0].DeadLetters == 1 && stats[0].InFlight == 0 && stats[0].Queued == 0
	})
}
