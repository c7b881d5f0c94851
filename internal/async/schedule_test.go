package async

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/testfix/jstest"
)

func TestNATSPattern(t *testing.T) {
	for expr, want := range map[string]string{
		"rate(5 minutes)":             "@every 5m0s",
		"rate(1 hour)":                "@every 1h0m0s",
		"rate(2 days)":                "@every 48h0m0s",
		"cron(0 12 * * ? *)":          "0 0 12 * * ?",
		"cron(15 10 ? * MON-FRI *)":   "0 15 10 ? * mon-fri",
		"cron(0/15 * ? * 2-6 *)":      "0 0/15 * ? * 1-5",
		"cron(0 8 1 JAN,JUL ? *)":     "0 0 8 1 jan,jul ?",
		"cron(0 18 ? * 1,7 *)":        "0 0 18 ? * 0,6",
		"cron(30 9 ? * 2/2 *)":        "0 30 9 ? * 1/2",
		"cron(0 0 ? * SUN,WED-FRI *)": "0 0 0 ? * sun,wed-fri",
	} {
		e, err := spec.ParseScheduleExpression(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if got := natsPattern(e); got != want {
			t.Errorf("%s: %q, want %q", expr, got, want)
		}
	}
}

// ticks counts the invocations of a scheduled function and keeps their events.
type ticks struct {
	mu     sync.Mutex
	events [][]byte
}

func (k *ticks) handler(p []byte) ([]byte, error) {
	k.mu.Lock()
	k.events = append(k.events, append([]byte(nil), p...))
	k.mu.Unlock()
	return nil, nil
}

func (k *ticks) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.events)
}

// Two nodes run the same schedule's firings: each firing runs once, at about the schedule's rate.
func TestScheduleFiresOncePerStack(t *testing.T) {
	e := newEnv(t)
	var k ticks
	e.fake.set("tick", fastSettings(), k.handler)
	q1, _ := e.start(t, nil)
	nc2, err := nats.Connect(e.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc2.Close)
	js2, _ := jetstream.New(nc2)
	_, _ = (&env{js: js2, fake: e.fake, url: e.url}).start(t, nil)

	every := []ScheduleOf{{Function: "tick", Schedule: spec.Schedule{Expression: "rate(1 minute)"}, pattern: "@every 1s"}}
	if err := q1.SetSchedules(context.Background(), every); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(5 * time.Second)
	n := k.count()
	took := time.Since(start)
	// Coarse bounds: a firing a second, the first within about a second of the schedule's creation.
	if n < 2 || float64(n) > took.Seconds()+1 {
		t.Fatalf("%d firings in %s, want about one a second (and none doubled by the second node)", n, took)
	}
	k.mu.Lock()
	first := k.events[0]
	k.mu.Unlock()
	var ev ScheduledEvent
	if err := json.Unmarshal(first, &ev); err != nil || ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" || ev.Version != "0" ||
		len(ev.Resources) != 1 || ev.Resources[0] != "arn:aws:events:us-east-1:000000000000:rule/t-tick-0" || ev.ID == "" || string(ev.Detail) != "{}" {
		t.Errorf("event %s (%v)", first, err)
	}
	if _, err := time.Parse(time.RFC3339, ev.Time); err != nil {
		t.Errorf("time %q: %v", ev.Time, err)
	}

	// Listed with when it fires next and last fired.
	list, err := q1.Schedules(context.Background())
	if err != nil || len(list) != 1 || list[0].Function != "tick" || list[0].Expression != "rate(1 minute)" || list[0].Missed != "once" ||
		list[0].LastFired.IsZero() || !list[0].Next.After(list[0].LastFired.Add(-2*time.Second)) {
		t.Errorf("Schedules: %+v, %v", list, err)
	}

	// Setting the same schedules again changes nothing stored; removing them stops the firings.
	info, _ := q1.sched.Info(context.Background(), jetstream.WithSubjectFilter("gh.t.sched.rule.>"))
	if err := q1.SetSchedules(context.Background(), every); err != nil {
		t.Fatal(err)
	}
	again, _ := q1.sched.Info(context.Background(), jetstream.WithSubjectFilter("gh.t.sched.rule.>"))
	if info.State.Subjects["gh.t.sched.rule.tick.0"] != 1 || again.State.Subjects["gh.t.sched.rule.tick.0"] != 1 {
		t.Errorf("rule messages %v then %v, want one", info.State.Subjects, again.State.Subjects)
	}
	ruleSeq := func() uint64 {
		m, err := q1.sched.GetLastMsgForSubject(context.Background(), "gh.t.sched.rule.tick.0")
		if err != nil {
			return 0
		}
		return m.Sequence
	}
	before := ruleSeq()
	if err := q1.SetSchedules(context.Background(), every); err != nil || ruleSeq() != before {
		t.Errorf("an unchanged schedule was stored again (%v)", err)
	}
	if err := q1.SetSchedules(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if list, err := q1.Schedules(context.Background()); err != nil || len(list) != 0 {
		t.Errorf("Schedules after removing them all: %+v, %v", list, err)
	}
	time.Sleep(1500 * time.Millisecond) // a firing under way when it was removed may still run
	stopped := k.count()
	time.Sleep(2 * time.Second)
	if n := k.count(); n != stopped {
		t.Errorf("%d firings after the schedule was removed", n-stopped)
	}
}

func TestScheduleInput(t *testing.T) {
	e := newEnv(t)
	var k ticks
	e.fake.set("report", fastSettings(), k.handler)
	q, _ := e.start(t, nil)
	if err := q.SetSchedules(context.Background(), []ScheduleOf{{Function: "report",
		Schedule: spec.Schedule{Expression: "rate(1 minute)", Input: json.RawMessage(`{"kind":"daily"}`)}, pattern: "@every 1s"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the schedule fires", func() bool { return k.count() >= 1 })
	k.mu.Lock()
	defer k.mu.Unlock()
	if string(k.events[0]) != `{"kind":"daily"}` {
		t.Errorf("event %s, want the schedule's input", k.events[0])
	}
}

func TestBadScheduleIsRefused(t *testing.T) {
	e := newEnv(t)
	q, _ := e.start(t, nil)
	err := q.SetSchedules(context.Background(), []ScheduleOf{{Function: "f", Schedule: spec.Schedule{Expression: "cron(0 12 * * ? *)"}, pattern: "@every 1ms"}})
	if err == nil {
		t.Error("a pattern JetStream refuses was taken")
	}
}

// A schedule that skips missed firings drops the one JetStream makes when it comes back after
// downtime; one that fires once for them runs it.
func TestMissedFirings(t *testing.T) {
	for _, missed := range []string{spec.MissedSkip, spec.MissedOnce} {
		t.Run(missed, func(t *testing.T) {
			dir := t.TempDir()
			ns := jstest.Start(t, dir)
			fake := newFake()
			var k ticks
			fake.set("nightly", fastSettings(), k.handler)
			run := func(url string) (*Queue, func()) {
				nc, err := nats.Connect(url)
				if err != nil {
					t.Fatal(err)
				}
				js, _ := jetstream.New(nc)
				q, stopQueue := (&env{js: js, fake: fake, url: url}).start(t, func(c *Config) { c.lateAfter = 2 * time.Second })
				return q, func() { stopQueue(); nc.Close() }
			}
			q, stop := run(ns.ClientURL())
			if err := q.SetSchedules(context.Background(), []ScheduleOf{{Function: "nightly",
				Schedule: spec.Schedule{Expression: "rate(1 minute)", Missed: missed}, pattern: "@every 3s"}}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the first firing", func() bool { return k.count() >= 1 })
			stop()
			ns.Shutdown()
			ns.WaitForShutdown()
			down := k.count()
			time.Sleep(7 * time.Second) // two firings missed
			ns2 := jstest.Start(t, dir)
			restart := time.Now().UTC().Truncate(time.Second) // the server is back
			_, _ = run(ns2.ClientURL())
			// JetStream fires once at once for what was missed, then every 3 s again: the first
			// firing run after the restart is the catch-up one, or with skip the next on time.
			waitFor(t, "a firing after the restart", func() bool { return k.count() > down })
			k.mu.Lock()
			first := k.events[down]
			k.mu.Unlock()
			var ev ScheduledEvent
			if err := json.Unmarshal(first, &ev); err != nil {
				t.Fatal(err)
			}
			at, err := time.Parse(time.RFC3339, ev.Time)
			if err != nil {
				t.Fatal(err)
			}
			after := at.Sub(restart)
			switch missed {
			case spec.MissedSkip:
				if after < 2500*time.Millisecond {
					t.Errorf("the first firing run after the restart was made %s after it, want the catch-up one skipped (the next is 3 s later)", after)
				}
			case spec.MissedOnce:
				if after > 2*time.Second {
					t.Errorf("the first firing run after the restart was made %s after it, want the catch-up one at once", after)
				}
			}
		})
	}
}
