package async

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/spec"
)

// batches records the batches a source's function receives, as aws-lambda-go decodes them.
type batches struct {
	mu  sync.Mutex
	got []events.SQSEvent
	// fail decides, per record, whether to report it failed.
	fail func(r events.SQSMessage) bool
}

func (b *batches) handler(p []byte) ([]byte, error) {
	var ev events.SQSEvent
	if err := json.Unmarshal(p, &ev); err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.got = append(b.got, ev)
	fail := b.fail
	b.mu.Unlock()
	var resp events.SQSEventResponse
	for _, r := range ev.Records {
		if fail != nil && fail(r) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
	}
	return json.Marshal(resp)
}

// bodies returns every record's body in the order received, and how often each was received.
func (b *batches) bodies() ([]string, map[string]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var order []string
	count := map[string]int{}
	for _, ev := range b.got {
		for _, r := range ev.Records {
			order = append(order, r.Body)
			count[r.Body]++
		}
	}
	return order, count
}

func sourceFor(fn, subject string, mod func(*spec.EventSource)) SourceOf {
	s := SourceOf{Function: fn, EventSource: spec.DefaultEventSource(subject)}
	if mod != nil {
		mod(&s.EventSource)
	}
	return s
}

func TestSourceBatches(t *testing.T) {
	e := newEnv(t)
	var b batches
	e.fake.set("consume", fastSettings(), b.handler)
	q, _ := e.start(t, nil)
	if err := q.SetSources(context.Background(), []SourceOf{sourceFor("consume", "orders.*", func(s *spec.EventSource) {
		s.BatchSize, s.BatchWindow = 5, spec.Duration(300*time.Millisecond)
	})}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the consumer exists; LATEST starts from here
	for i := range 12 {
		if _, err := q.Publish(context.Background(), "orders.created", []byte("order-"+strconv.Itoa(i)), ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Publish(context.Background(), "invoices.created", []byte("not for this source"), ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "twelve records", func() bool { order, _ := b.bodies(); return len(order) >= 12 })
	order, count := b.bodies()
	for i := range 12 {
		if order[i] != "order-"+strconv.Itoa(i) || count[order[i]] != 1 {
			t.Fatalf("records %v: want order-0 … order-11 once each, in order", order)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.got) < 3 {
		t.Errorf("%d batches for 12 records of at most 5", len(b.got))
	}
	for _, ev := range b.got {
		if len(ev.Records) > 5 {
			t.Errorf("a batch of %d records; batchSize is 5", len(ev.Records))
		}
		for _, r := range ev.Records {
			if r.MessageId == "" || r.EventSource != "gatehouse:events" || r.Attributes["ApproximateReceiveCount"] != "1" ||
				r.MessageAttributes["subject"].StringValue == nil || *r.MessageAttributes["subject"].StringValue != "orders.created" || r.Md5OfBody == "" {
				t.Errorf("record %+v", r)
			}
		}
	}
}

func TestSourcePartialFailureRedeliversOnlyTheFailed(t *testing.T) {
	e := newEnv(t)
	failedOnce := map[string]bool{}
	var mu sync.Mutex
	b := batches{fail: func(r events.SQSMessage) bool {
		mu.Lock()
		defer mu.Unlock()
		if r.Body == "flaky" && !failedOnce[r.Body] {
			failedOnce[r.Body] = true
			return true
		}
		return r.Body == "poison"
	}}
	e.fake.set("consume", fastSettings(), b.handler)
	q, _ := e.start(t, nil)
	if err := q.SetSources(context.Background(), []SourceOf{sourceFor("consume", "jobs", func(s *spec.EventSource) {
		s.BatchSize, s.BatchWindow, s.MaxReceiveCount = 10, spec.Duration(300*time.Millisecond), 2
	})}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	for _, body := range []string{"a", "flaky", "b", "poison", "c"} {
		if _, err := q.Publish(context.Background(), "jobs", []byte(body), ""); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the poison record to become a dead letter", func() bool {
		stats, err := q.Stats(context.Background())
		if err != nil {
			return false
		}
		for _, s := range stats {
			if s.Function == "consume" && s.DeadLetters == 1 {
				return true
			}
		}
		return false
	})
	_, count := b.bodies()
	want := map[string]int{"a": 1, "b": 1, "c": 1, "flaky": 2, "poison": 2}
	for body, n := range want {
		if count[body] != n {
			t.Errorf("%q received %d times, want %d (only failed records are delivered again, up to maxReceiveCount)", body, count[body], n)
		}
	}
	raw, err := e.js.Stream(context.Background(), DeadLetterStreamName("t"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := raw.GetLastMsgForSubject(context.Background(), "gh.t.asyncdead.consume")
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	var ev events.SQSEvent
	if json.Unmarshal(m.Data, &rec) != nil || rec.RequestContext.Condition != "MaxReceiveCountExceeded" || rec.RequestContext.ApproximateInvokeCount != 2 ||
		json.Unmarshal(rec.RequestPayload, &ev) != nil || len(ev.Records) != 1 || ev.Records[0].Body != "poison" {
		t.Errorf("dead letter %s", m.Data)
	}
}

func TestSourceStartingPositionAndRemoval(t *testing.T) {
	e := newEnv(t)
	var latest, all batches
	e.fake.set("latest", fastSettings(), latest.handler)
	e.fake.set("all", fastSettings(), all.handler)
	q, _ := e.start(t, nil)
	if _, err := q.Publish(context.Background(), "log.line", []byte("before"), ""); err != nil {
		t.Fatal(err)
	}
	srcs := []SourceOf{sourceFor("latest", "log.>", nil), sourceFor("all", "log.>", func(s *spec.EventSource) { s.StartingPosition = spec.StartTrimHorizon })}
	if err := q.SetSources(context.Background(), srcs); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := q.Publish(context.Background(), "log.line", []byte("after"), ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both sources receive", func() bool {
		l, _ := latest.bodies()
		a, _ := all.bodies()
		return len(l) >= 1 && len(a) >= 2
	})
	if l, _ := latest.bodies(); len(l) != 1 || l[0] != "after" {
		t.Errorf("LATEST received %v, want [after]", l)
	}
	if a, _ := all.bodies(); len(a) != 2 || a[0] != "before" || a[1] != "after" {
		t.Errorf("TRIM_HORIZON received %v, want [before after]", a)
	}
	// Publishing needs a subject without wildcards.
	if _, err := q.Publish(context.Background(), "log.*", nil, ""); err == nil {
		t.Error("publishing on a wildcard subject was taken")
	}
	// Removing a source stops its deliveries.
	if err := q.SetSources(context.Background(), srcs[1:]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the runner sees the removal within a second
	if _, err := q.Publish(context.Background(), "log.line", []byte("later"), ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the remaining source receives", func() bool { a, _ := all.bodies(); return len(a) >= 3 })
	time.Sleep(500 * time.Millisecond)
	if l, _ := latest.bodies(); len(l) != 1 {
		t.Errorf("a removed source received %v", l)
	}
}

// A failure destination that is a subject: the record is published there, and a source of that
// subject receives it.
func TestFailureToSubject(t *testing.T) {
	e := newEnv(t)
	var b batches
	a := fastSettings()
	a.MaximumRetryAttempts = 0
	a.OnFailure = "subject:failures.bad"
	e.fake.set("bad", a, func([]byte) ([]byte, error) { return nil, bus.ErrFunctionError })
	e.fake.set("watch", fastSettings(), b.handler)
	q, _ := e.start(t, nil)
	if err := q.SetSources(context.Background(), []SourceOf{sourceFor("watch", "failures.>", nil)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := q.Enqueue(context.Background(), Event{Function: "bad", RequestID: "r1", Payload: []byte(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the record on the subject", func() bool { order, _ := b.bodies(); return len(order) == 1 })
	order, _ := b.bodies()
	var rec Record
	if err := json.Unmarshal([]byte(order[0]), &rec); err != nil || rec.RequestContext.Condition != "RetriesExhausted" || string(rec.RequestPayload) != `{"x":1}` {
		t.Errorf("record %s (%v)", order[0], err)
	}
	if stats, _ := q.Stats(context.Background()); len(stats) > 0 && stats[0].Function == "bad" && stats[0].DeadLetters != 0 {
		t.Errorf("a failure sent to its destination is also a dead letter: %+v", stats)
	}
}
