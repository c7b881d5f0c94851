package async

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/jsopen"
	"gatehouse.dev/gatehouse/internal/spec"
)

// Schedules are kept in the stack's stream gh_<stack>_schedules as JetStream message schedules: one
// message per schedule (subject gh.<stack>.sched.rule.<function>.<n>) whose headers hold the
// pattern, and that the stream's leader fires into gh.<stack>.sched.fire.<function>.<n> at each
// time. A firing is therefore made once per stack, whichever node leads the stream, and survives
// restarts. One durable consumer, run by every node, turns each firing into an asynchronous
// invocation (so it has the function's retries and destinations). The last firing's announced next
// time is kept at gh.<stack>.sched.next.<function>.<n>, to tell a firing made late after downtime
// from one on time.

// Headers of a schedule message, copied onto its firings.
const (
	hdrRule       = "Gh-Rule"
	hdrExpression = "Gh-Expression"
	hdrMissed     = "Gh-Missed"
	hdrTimeZone   = "Gh-Time-Zone"
)

// lateAfter is how long after its time a firing counts as made late (after downtime), for
// schedules that skip missed firings.
const lateAfter = 30 * time.Second

// lateness is lateAfter, or the shorter bound a test set.
func (q *Queue) lateness() time.Duration {
	if q.cfg.lateAfter > 0 {
		return q.cfg.lateAfter
	}
	return lateAfter
}

// ScheduleStreamName is the stream of a stack's schedules.
func ScheduleStreamName(stack string) string { return "gh_" + stack + "_schedules" }

func (q *Queue) schedSubject(kind, function string, n int) string {
	return "gh." + q.cfg.Stack + ".sched." + kind + "." + function + "." + strconv.Itoa(n)
}

// openSchedules binds to the schedules stream and its consumer of firings.
func (q *Queue) openSchedules(ctx context.Context) error {
	var err error
	q.sched, err = jsopen.Stream(ctx, q.cfg.JS, jetstream.StreamConfig{
		Name: ScheduleStreamName(q.cfg.Stack), Description: "Gatehouse schedules of stack " + q.cfg.Stack,
		Subjects: []string{"gh." + q.cfg.Stack + ".sched.>"}, Storage: jetstream.FileStorage,
		MaxMsgsPerSubject: 1, Discard: jetstream.DiscardOld, AllowMsgSchedules: true, AllowRollup: true,
	})
	if err != nil {
		return err
	}
	q.fires, err = q.sched.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "fires", Description: "Gatehouse schedule firings of stack " + q.cfg.Stack,
		FilterSubject: "gh." + q.cfg.Stack + ".sched.fire.>", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxDeliver: -1,
	})
	if err != nil {
		return fmt.Errorf("opening the schedules' consumer: %w", err)
	}
	return nil
}

// ScheduleOf is one schedule of a function, for SetSchedules.
type ScheduleOf struct {
	Function string
	spec.Schedule
	// pattern, when set, is the JetStream pattern to use instead of the expression's (tests fire
	// every second, which no expression does).
	pattern string
}

// SetSchedules makes the stack's schedules those given: new and changed ones are stored (a
// changed one starts over from now), the others removed. A schedule that did not change keeps its
// timing, so nodes that start with the same stack file change nothing.
func (q *Queue) SetSchedules(ctx context.Context, schedules []ScheduleOf) error {
	want := map[string]bool{}
	count := map[string]int{}
	var errs []error
	for _, s := range schedules {
		n := count[s.Function]
		count[s.Function]++
		subj := q.schedSubject("rule", s.Function, n)
		want[subj] = true
		m, err := q.scheduleMsg(s, n)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %s of %s: %w", s.Expression, s.Function, err))
			continue
		}
		if cur, err := q.sched.GetLastMsgForSubject(ctx, subj); err == nil && sameSchedule(cur, m) {
			continue
		}
		m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		if _, err := q.cfg.JS.PublishMsg(ctx, m); err != nil {
			errs = append(errs, fmt.Errorf("storing schedule %s of %s: %w", s.Expression, s.Function, err))
			continue
		}
		q.log.Info("schedule set", "function", s.Function, "schedule", s.Expression)
	}
	info, err := q.sched.Info(ctx, jetstream.WithSubjectFilter("gh."+q.cfg.Stack+".sched.rule.>"))
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for subj := range info.State.Subjects {
		if want[subj] {
			continue
		}
		// Removed from the stack: the schedule, and what is kept about its firings.
		for _, s := range []string{subj, strings.Replace(subj, ".sched.rule.", ".sched.next.", 1)} {
			if err := q.sched.Purge(ctx, jetstream.WithPurgeSubject(s)); err != nil {
				errs = append(errs, err)
			}
		}
		q.log.Info("schedule removed", "rule", subj)
	}
	return errors.Join(errs...)
}

// scheduleMsg is the schedule message of s, the function's n-th schedule.
func (q *Queue) scheduleMsg(s ScheduleOf, n int) (*nats.Msg, error) {
	pattern := s.pattern
	if pattern == "" {
		e, err := spec.ParseScheduleExpression(s.Expression)
		if err != nil {
			return nil, err
		}
		pattern = natsPattern(e)
	}
	m := nats.NewMsg(q.schedSubject("rule", s.Function, n))
	m.Data = s.Input
	m.Header.Set("Nats-Schedule", pattern)
	m.Header.Set("Nats-Schedule-Target", q.schedSubject("fire", s.Function, n))
	if s.TimeZone != "" {
		m.Header.Set("Nats-Schedule-Time-Zone", s.TimeZone)
	}
	m.Header.Set(hdrRule, s.Function+"-"+strconv.Itoa(n))
	m.Header.Set(hdrExpression, s.Expression)
	missed := s.Missed
	if missed == "" {
		missed = spec.MissedOnce
	}
	m.Header.Set(hdrMissed, missed)
	if s.TimeZone != "" {
		m.Header.Set(hdrTimeZone, s.TimeZone)
	}
	return m, nil
}

// sameSchedule reports whether the stored schedule cur is m.
func sameSchedule(cur *jetstream.RawStreamMsg, m *nats.Msg) bool {
	for _, h := range []string{"Nats-Schedule", "Nats-Schedule-Target", "Nats-Schedule-Time-Zone", hdrExpression, hdrMissed, hdrRule} {
		if cur.Header.Get(h) != m.Header.Get(h) {
			return false
		}
	}
	return string(cur.Data) == string(m.Data)
}

// natsPattern writes e as a JetStream schedule: "@every 5m", or a cron pattern with seconds first
// and days of the week numbered from 0 (EventBridge numbers them from 1).
func natsPattern(e spec.ScheduleExpression) string {
	if e.Rate != 0 {
		return "@every " + e.Rate.String()
	}
	f := make([]string, 0, 6)
	f = append(f, "0")
	for i, v := range e.Cron {
		v = strings.ToLower(v)
		if i == 4 {
			v = shiftDays(v)
		}
		f = append(f, v)
	}
	return strings.Join(f, " ")
}

// shiftDays renumbers a day-of-week field from EventBridge's 1–7 to 0–6; names, * and ? stay, and
// so do the steps after a /.
func shiftDays(v string) string {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		rng, step, hasStep := strings.Cut(p, "/")
		ends := strings.Split(rng, "-")
		for j, end := range ends {
			if d, err := strconv.Atoi(end); err == nil && d >= 1 {
				ends[j] = strconv.Itoa(d - 1)
			}
		}
		parts[i] = strings.Join(ends, "-")
		if hasStep {
			parts[i] += "/" + step
		}
	}
	return strings.Join(parts, ",")
}

// runFires turns the schedules' firings into asynchronous invocations until ctx ends.
func (q *Queue) runFires(ctx context.Context) {
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := q.fires.Fetch(16, jetstream.FetchContext(fctx))
		if err == nil {
			for m := range batch.Messages() {
				q.fire(ctx, m)
			}
			err = batch.Error()
		}
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			q.log.Debug("fetching schedule firings", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// fire queues the invocation of one firing, then acknowledges it.
func (q *Queue) fire(ctx context.Context, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		_ = m.Term()
		return
	}
	subj := m.Subject()
	// gh.<stack>.sched.fire.<function>.<n>
	parts := strings.Split(subj, ".")
	if len(parts) != 6 {
		_ = m.Term()
		return
	}
	function := parts[4]
	h := m.Headers()
	rule := h.Get(hdrRule)
	log := q.log.With("function", function, "schedule", h.Get(hdrExpression))
	nextSubj := strings.Replace(subj, ".sched.fire.", ".sched.next.", 1)
	if h.Get(hdrMissed) == spec.MissedSkip {
		// The time this firing was due is what the firing before it announced.
		if prev, err := q.sched.GetLastMsgForSubject(ctx, nextSubj); err == nil {
			if due, err := time.Parse(time.RFC3339Nano, string(prev.Data)); err == nil && meta.Timestamp.Sub(due) > q.lateness() {
				log.Info("schedule firing skipped: it was due while the stack was down", "due", due, "fired", meta.Timestamp)
				q.recordNext(ctx, nextSubj, h)
				q.counts.schedule(function, true)
				_ = m.DoubleAck(ctx)
				return
			}
		}
	}
	payload := m.Data()
	requestID := firingID(q.cfg.Stack, subj, meta.Sequence.Stream)
	if len(payload) == 0 {
		payload = q.scheduledEvent(requestID, rule, meta.Timestamp)
	}
	if err := q.Enqueue(ctx, Event{Function: function, RequestID: requestID, Payload: payload}); err != nil {
		log.Warn("schedule firing: queueing the invocation", "error", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	q.recordNext(ctx, nextSubj, h)
	q.counts.schedule(function, false)
	_ = m.DoubleAck(ctx)
	log.Debug("schedule fired", "requestId", requestID)
}

// recordNext keeps the next time a firing announced.
func (q *Queue) recordNext(ctx context.Context, subj string, h nats.Header) {
	next := h.Get("Nats-Schedule-Next")
	if _, err := time.Parse(time.RFC3339Nano, next); err != nil {
		return
	}
	if _, err := q.cfg.JS.Publish(ctx, subj, []byte(next)); err != nil {
		q.log.Warn("schedule firing: keeping its next time", "subject", subj, "error", err)
	}
}

// firingID is the request id of a firing, the same however often the firing is delivered: an
// invocation queued twice for it is stored once (the queue's duplicate detection).
func firingID(stack, subj string, seq uint64) string {
	sum := sha256.Sum256([]byte(stack + "/" + subj + "/" + strconv.FormatUint(seq, 10)))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ScheduledEvent is EventBridge's Scheduled Event, what a firing passes without an input.
type ScheduledEvent struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

func (q *Queue) scheduledEvent(id, rule string, at time.Time) []byte {
	region, account := q.cfg.Region, q.cfg.AccountID
	b, _ := json.Marshal(ScheduledEvent{Version: "0", ID: id, DetailType: "Scheduled Event", Source: "aws.events", Account: account,
		Time: at.UTC().Format("2006-01-02T15:04:05Z"), Region: region,
		Resources: []string{"arn:aws:events:" + region + ":" + account + ":rule/" + q.cfg.Stack + "-" + rule}, Detail: json.RawMessage("{}")})
	return b
}

// ScheduleInfo is one stored schedule, for operators.
type ScheduleInfo struct {
	Function   string `json:"function"`
	Expression string `json:"expression"`
	TimeZone   string `json:"timezone,omitempty"`
	Missed     string `json:"missed"`
	// Next is when the schedule fires next, as its last firing announced it; zero before its first
	// firing.
	Next time.Time `json:"next,omitzero"`
	// LastFired is when it last fired; zero before its first firing.
	LastFired time.Time `json:"lastFired,omitzero"`
}

// Schedules lists the stack's stored schedules, sorted by function.
func (q *Queue) Schedules(ctx context.Context) ([]ScheduleInfo, error) {
	info, err := q.sched.Info(ctx, jetstream.WithSubjectFilter("gh."+q.cfg.Stack+".sched.rule.>"))
	if err != nil {
		return nil, err
	}
	subjects := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		subjects = append(subjects, subj)
	}
	slices.Sort(subjects)
	var out []ScheduleInfo
	for _, subj := range subjects {
		m, err := q.sched.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			continue
		}
		parts := strings.Split(subj, ".")
		si := ScheduleInfo{Function: parts[len(parts)-2], Expression: m.Header.Get(hdrExpression),
			TimeZone: m.Header.Get(hdrTimeZone), Missed: m.Header.Get(hdrMissed)}
		if next, err := q.sched.GetLastMsgForSubject(ctx, strings.Replace(subj, ".sched.rule.", ".sched.next.", 1)); err == nil {
			si.Next, _ = time.Parse(time.RFC3339Nano, string(next.Data))
			si.LastFired = next.Time
		}
		out = append(out, si)
	}
	return out, nil
}
