package logstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/testfix/jstest"
)

const testStack = "test"

// ---------------------------------------------------------------------------------------------
// Helpers: an embedded JetStream server per test.

// startJetStream starts a NATS server with JetStream and connects a client to it. Both stop when the
// test ends.
func startJetStream(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	return jstest.Connect(tb, jstest.Start(tb, ""))
}

// setup starts a server and creates the test stack's log stream with l.
func setup(t *testing.T, l Limits) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js := startJetStream(t)
	if err := Ensure(t.Context(), js, testStack, l); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func record(function string, i int) Record {
	return Record{
		Time:      time.Unix(1700000000, int64(i)).UTC(),
		Function:  function,
		Version:   1,
		RequestID: fmt.Sprintf("req-%d", i),
		Stream:    StreamStdout,
		Worker:    "w1",
		Message:   fmt.Sprintf("%s line %d", function, i),
	}
}

// settle flushes nc and waits until the stream has stored every message up to sequence last:
// the server stores core publishes asynchronously.
func settle(t *testing.T, nc *nats.Conn, js jetstream.JetStream, last uint64) {
	t.Helper()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := js.Stream(t.Context(), StreamName(testStack))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.CachedInfo().State.LastSeq; got >= last {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("stream stored up to sequence %d, want %d", got, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// messages returns the Message of each record.
func messages(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Message
	}
	return out
}

func lines(function string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, record(function, i).Message)
	}
	return out
}

func equal(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n") && len(a) == len(b)
}

// ---------------------------------------------------------------------------------------------
// Names and the stream.

func TestNames(t *testing.T) {
	if got := StreamName("prod"); got != "gh_prod_logs" {
		t.Errorf("StreamName = %q", got)
	}
	if got := Subject("prod", "hello"); got != "gh.prod.logs.hello" {
		t.Errorf("Subject = %q", got)
	}
	if got := SubjectAll("prod"); got != "gh.prod.logs.*" {
		t.Errorf("SubjectAll = %q", got)
	}
}

func TestEnsure(t *testing.T) {
	_, js := startJetStream(t)
	ctx := t.Context()
	config := func() jetstream.StreamConfig {
		t.Helper()
		st, err := js.Stream(ctx, StreamName(testStack))
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config
	}

	for range 2 {
		if err := Ensure(ctx, js, testStack, Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	c := config()
	if c.MaxBytes != DefaultMaxBytes || c.MaxAge != DefaultMaxAge || c.MaxMsgSize != DefaultMaxMsgSize ||
		c.Storage != jetstream.FileStorage || c.Discard != jetstream.DiscardOld ||
		len(c.Subjects) != 1 || c.Subjects[0] != SubjectAll(testStack) {
		t.Errorf("config after Ensure with defaults: %+v", c)
	}

	changed := Limits{MaxBytes: 1 << 20, MaxAge: time.Hour, MaxMsgSize: 32 << 10}
	for range 2 {
		if err := Ensure(ctx, js, testStack, changed); err != nil {
			t.Fatal(err)
		}
	}
	c = config()
	if c.MaxBytes != changed.MaxBytes || c.MaxAge != changed.MaxAge || c.MaxMsgSize != changed.MaxMsgSize {
		t.Errorf("config after Ensure with %+v: %+v", changed, c)
	}

	for name, tc := range map[string]struct {
		stack string
		l     Limits
	}{
		"bad stack":      {"a.b", Limits{}},
		"empty stack":    {"", Limits{}},
		"negative bytes": {testStack, Limits{MaxBytes: -1}},
		"negative age":   {testStack, Limits{MaxAge: -time.Second}},
	} {
		if err := Ensure(ctx, js, tc.stack, tc.l); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Ensure = %v, want ErrInvalid", name, err)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Recent.

func TestRecent(t *testing.T) {
	nc, js := setup(t, Limits{})
	pub := NewPublisher(nc, testStack)
	// Interleave two functions: 30 records of "alpha", 90 of "beta".
	var seq uint64
	for i := range 30 {
		pub.Publish(record("alpha", i))
		seq++
		for j := range 3 {
			pub.Publish(record("beta", 3*i+j))
			seq++
		}
	}
	settle(t, nc, js, seq)
	if n := pub.Dropped(); n != 0 {
		t.Fatalf("Dropped = %d", n)
	}
	r := NewReader(js, testStack)

	tests := []struct {
		name     string
		function string
		limit    int
		want     []string
	}{
		{"last one", "alpha", 1, lines("alpha", 29, 30)},
		{"last few", "alpha", 5, lines("alpha", 25, 30)},
		{"exactly all", "alpha", 30, lines("alpha", 0, 30)},
		{"more than there are", "alpha", 1000, lines("alpha", 0, 30)},
		{"other function", "beta", 7, lines("beta", 83, 90)},
		{"no records", "gamma", 10, nil},
		{"zero limit", "alpha", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := r.Recent(t.Context(), tt.function, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := messages(recs); !equal(got, tt.want) {
				t.Errorf("Recent(%s, %d) = %q\nwant %q", tt.function, tt.limit, got, tt.want)
			}
			for i, rec := range recs {
				if i > 0 && rec.Seq <= recs[i-1].Seq {
					t.Errorf("record %d has sequence %d after %d: want them increasing", i, rec.Seq, recs[i-1].Seq)
				}
				if rec.Function != tt.function || rec.Version != 1 || rec.Stream != StreamStdout || rec.Worker != "w1" {
					t.Errorf("record %+v", rec)
				}
			}
		})
	}

	t.Run("whole record", func(t *testing.T) {
		recs, err := r.Recent(t.Context(), "alpha", 1)
		if err != nil || len(recs) != 1 {
			t.Fatalf("Recent = %v, %v", recs, err)
		}
		want := record("alpha", 29)
		want.Seq = recs[0].Seq // its place in the stream, set when read
		if recs[0].Seq == 0 || recs[0] != want {
			t.Errorf("got %+v\nwant %+v", recs[0], want)
		}
	})
}

// TestRecentReadsLittle checks that Recent reads about limit records whatever the stream holds:
// many records of other functions, many of the function itself, spread evenly or not.
func TestRecentReadsLittle(t *testing.T) {
	nc, js := setup(t, Limits{})
	pub := NewPublisher(nc, testStack)
	var seq uint64
	publish := func(function string, i int) {
		pub.Publish(record(function, i))
		seq++
	}
	// "busy" logs 3000 lines. "rare" logs one line every 50 of "busy" for the first 2000, then a
	// burst of 400, then one every 10: its records are not spread evenly.
	rare := 0
	for i := range 3000 {
		publish("busy", i)
		switch {
		case i == 2000:
			for range 400 {
				publish("rare", rare)
				rare++
			}
		case i < 2000 && i%50 == 0, i > 2000 && i%10 == 0:
			publish("rare", rare)
			rare++
		}
	}
	settle(t, nc, js, seq)
	r := NewReader(js, testStack)
	for _, tc := range []struct {
		function string
		total    int
	}{{"busy", 3000}, {"rare", rare}} {
		for _, limit := range []int{1, 10, 100, 450, tc.total - 1, tc.total, tc.total + 1} {
			recs, stats, err := r.recent(t.Context(), tc.function, limit)
			if err != nil {
				t.Fatal(err)
			}
			from := max(tc.total-limit, 0)
			if got, want := messages(recs), lines(tc.function, from, tc.total); !equal(got, want) {
				t.Errorf("recent(%s, %d): got %d records %q…, want %d", tc.function, limit, len(got), got[:min(len(got), 3)], len(want))
			}
			if most := limit + limit/2 + 32; stats.fetched > most {
				t.Errorf("recent(%s, %d) read %d records, want at most %d", tc.function, limit, stats.fetched, most)
			}
			if stats.probes > 20 {
				t.Errorf("recent(%s, %d) created %d consumers", tc.function, limit, stats.probes)
			}
			t.Logf("recent(%s, %d): %d consumers, %d records read", tc.function, limit, stats.probes, stats.fetched)
		}
	}
	// Recent deletes the consumers it creates.
	st, err := js.Stream(t.Context(), StreamName(testStack))
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Consumers; n != 0 {
		t.Errorf("%d consumers left", n)
	}
}

func TestRecentSkipsUndecodable(t *testing.T) {
	nc, js := setup(t, Limits{})
	pub := NewPublisher(nc, testStack)
	pub.Publish(record("fn", 0))
	if err := nc.Publish(Subject(testStack, "fn"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	pub.Publish(record("fn", 1))
	settle(t, nc, js, 3)
	recs, err := NewReader(js, testStack).Recent(t.Context(), "fn", 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := messages(recs), lines("fn", 0, 2); !equal(got, want) {
		t.Errorf("Recent = %q, want %q", got, want)
	}
}

// TestMaxBytes checks that the stream discards its oldest records past Limits.MaxBytes.
func TestMaxBytes(t *testing.T) {
	const maxBytes = 64 << 10
	nc, js := setup(t, Limits{MaxBytes: maxBytes})
	pub := NewPublisher(nc, testStack)
	const n = 200 // about 1.2 KiB each: about 240 KiB in all
	for i := range n {
		rec := record("fn", i)
		rec.Message += " " + strings.Repeat("x", 1024)
		pub.Publish(rec)
	}
	settle(t, nc, js, n)
	st, err := js.Stream(t.Context(), StreamName(testStack))
	if err != nil {
		t.Fatal(err)
	}
	state := st.CachedInfo().State
	if state.Bytes > maxBytes || state.Msgs >= n || state.FirstSeq == 1 {
		t.Fatalf("stream state %+v: want at most %d bytes, the oldest records gone", state, maxBytes)
	}
	recs, err := NewReader(js, testStack).Recent(t.Context(), "fn", n)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(recs)) != state.Msgs || len(recs) == 0 {
		t.Fatalf("Recent returned %d records, the stream holds %d", len(recs), state.Msgs)
	}
	first := n - len(recs)
	for i, rec := range recs {
		if want := record("fn", first+i).RequestID; rec.RequestID != want {
			t.Fatalf("record %d is %s, want %s", i, rec.RequestID, want)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Follow.

// waitConsumers waits until the stream has n consumers: Follow has created its own.
func waitConsumers(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := js.Stream(t.Context(), StreamName(testStack))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.CachedInfo().State.Consumers; got == n {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("stream has %d consumers, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFollow(t *testing.T) {
	nc, js := setup(t, Limits{})
	pub := NewPublisher(nc, testStack)
	for i := range 3 {
		pub.Publish(record("fn", i)) // before Follow starts: not followed
	}
	settle(t, nc, js, 3)
	r := NewReader(js, testStack)

	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan Record, 100)
	done := make(chan error, 1)
	go func() {
		done <- r.Follow(ctx, "fn", func(rec Record) error { got <- rec; return nil })
	}()
	waitConsumers(t, js, 1)

	for i := 3; i < 8; i++ {
		pub.Publish(record("other", i))
		pub.Publish(record("fn", i))
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, want := range lines("fn", 3, 8) {
		select {
		case rec := <-got:
			if rec.Message != want {
				t.Fatalf("followed %q, want %q", rec.Message, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no record; want %q", want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Follow after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not return after cancel")
	}
	select {
	case rec := <-got:
		t.Errorf("extra record %+v", rec)
	default:
	}
	waitConsumers(t, js, 0) // Follow deleted its consumer
}

func TestFollowCallbackError(t *testing.T) {
	nc, js := setup(t, Limits{})
	pub := NewPublisher(nc, testStack)
	r := NewReader(js, testStack)
	errStop := errors.New("stop")

	var mu sync.Mutex
	var seen []string
	done := make(chan error, 1)
	go func() {
		done <- r.Follow(t.Context(), "fn", func(rec Record) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, rec.Message)
			if len(seen) == 2 {
				return errStop
			}
			return nil
		})
	}()
	waitConsumers(t, js, 1)
	for i := range 5 {
		pub.Publish(record("fn", i))
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, errStop) {
			t.Errorf("Follow = %v, want the callback's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not return the callback's error")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := lines("fn", 0, 2); !equal(seen, want) {
		t.Errorf("seen %q, want %q", seen, want)
	}
}

// ---------------------------------------------------------------------------------------------
// Invalid input.

func TestInvalidFunction(t *testing.T) {
	nc, js := setup(t, Limits{})
	r := NewReader(js, testStack)
	pub := NewPublisher(nc, testStack)
	for _, name := range []string{"", "a.b", "*", ">", "a b", "é", strings.Repeat("x", MaxFunctionName+1)} {
		if _, err := r.Recent(t.Context(), name, 10); !errors.Is(err, ErrInvalid) {
			t.Errorf("Recent(%q) = %v, want ErrInvalid", name, err)
		}
		err := r.Follow(t.Context(), name, func(Record) error { return nil })
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Follow(%q) = %v, want ErrInvalid", name, err)
		}
		pub.Publish(Record{Function: name, Message: "x"})
	}
	if _, err := r.Recent(t.Context(), "fn", -1); !errors.Is(err, ErrInvalid) {
		t.Errorf("Recent with limit -1 = %v, want ErrInvalid", err)
	}
	if _, err := r.Recent(t.Context(), strings.Repeat("x", MaxFunctionName), 1); err != nil {
		t.Errorf("Recent with a %d-character name = %v", MaxFunctionName, err)
	}
	if got, want := pub.Dropped(), uint64(7); got != want {
		t.Errorf("Dropped = %d, want %d", got, want)
	}
}

func TestPublishTooLarge(t *testing.T) {
	nc, _ := setup(t, Limits{})
	pub := NewPublisher(nc, testStack)
	rec := record("fn", 0)
	rec.Message = strings.Repeat("\x01", 8<<10) // each byte escapes to 6
	pub.Publish(rec)
	if got := pub.Dropped(); got != 1 {
		t.Errorf("Dropped = %d, want 1", got)
	}
}

func TestMissingStream(t *testing.T) {
	_, js := startJetStream(t)
	_, err := NewReader(js, testStack).Recent(t.Context(), "fn", 1)
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("Recent without a stream = %v, want ErrStreamNotFound", err)
	}
	err = NewReader(js, testStack).Follow(t.Context(), "fn", func(Record) error { return nil })
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("Follow without a stream = %v, want ErrStreamNotFound", err)
	}
}

// ---------------------------------------------------------------------------------------------
// Benchmarks.

// BenchmarkPublish measures Publisher.Publish into a stored stream, in records per second.
func BenchmarkPublish(b *testing.B) {
	nc, js := startJetStream(b)
	if err := Ensure(b.Context(), js, testStack, Limits{}); err != nil {
		b.Fatal(err)
	}
	pub := NewPublisher(nc, testStack)
	rec := record("fn", 0)
	rec.Message = strings.Repeat("a log line of about a hundred bytes, ", 3)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		pub.Publish(rec)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if n := pub.Dropped(); n != 0 {
		b.Fatalf("Dropped = %d", n)
	}
}
