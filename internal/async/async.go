// Package async runs a stack's asynchronous invocations (Lambda's Event invocation type) from a
// JetStream stream: an event queued is kept until it has run, is retried by the function's async
// settings, and its outcome goes to the function's destinations; what fails for good is kept in the
// stack's dead-letter stream. Every node of a stack runs the same consumers, so the work spreads over
// the nodes and survives any of them.
//
// Layer 2: it imports the bus (for its error kinds), the registry's errors, the model and jsopen.
package async

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/jsopen"
	"gatehouse.dev/gatehouse/internal/spec"
)

// Event is one asynchronous invocation.
type Event struct {
	// Function names the function; Qualifier its version or alias ("" for the latest).
	Function, Qualifier string
	// RequestID identifies the invocation; the function sees it as its request id.
	RequestID string
	// Payload is the event passed to the function, at most spec.MaxAsyncPayload bytes.
	Payload []byte
}

// Config configures a [Queue].
type Config struct {
	// JS is the stack's JetStream; Stack its name (it prefixes the streams and subjects).
	JS    jetstream.JetStream
	Stack string
	// Invoke runs one invocation and waits for its answer, as a synchronous invocation does.
	Invoke func(ctx context.Context, function, qualifier string, payload []byte, requestID string) (out []byte, version int, err error)
	// Settings returns the async settings of the version function and qualifier name now.
	Settings func(function, qualifier string) (spec.AsyncSettings, error)
	// FunctionARN returns a function's ARN, for invocation records.
	FunctionARN func(function string) string
	// NewRequestID makes the request ids of the events a destination receives.
	NewRequestID func() string
	// Concurrency bounds the asynchronous invocations this node runs at once, over all functions;
	// default 4 per CPU. The rest of the workers' capacity stays for synchronous requests.
	Concurrency int
	// AckWait is how long an event taken by a node that stopped answering (killed, cut off) waits
	// before another node takes it; default 30s. A node running an event tells JetStream so every
	// AckWait/3, however long the function runs.
	AckWait time.Duration
	// MaxBytes bounds the queue's stream; an event past it is refused with ErrQueueFull. Default 1 GiB.
	MaxBytes int64
	// Logger receives what happens to events; default discards.
	Logger *slog.Logger
	// Region and AccountID name the rules in the Scheduled Events of schedules; default us-east-1
	// and 000000000000.
	Region, AccountID string

	// lateAfter overrides the schedules' lateAfter, in tests.
	lateAfter time.Duration
}

// ErrQueueFull is an event refused because the queue holds Config.MaxBytes already.
var ErrQueueFull = errors.New("the asynchronous invocation queue is full")

// ErrTooLarge is an event over spec.MaxAsyncPayload.
var ErrTooLarge = errors.New("the event is over the limit of asynchronous invocations")

// Header names of a queued event.
const (
	hdrRequestID = "Gh-Request-Id"
	hdrQualifier = "Gh-Qualifier"
	// hdrAttempt is how many times the event has run and failed before (0 for a new event).
	hdrAttempt = "Gh-Attempt"
	// hdrQueued is when the event was first queued (Unix milliseconds): its age counts from then.
	hdrQueued = "Gh-Queued"
	// hdrNotBefore is when a retry may run (Unix milliseconds).
	hdrNotBefore = "Gh-Not-Before"
	// hdrCondition is, on a dead letter, why it failed (RetriesExhausted, EventAgeExceeded, …).
	hdrCondition = "Gh-Condition"
)

// Queue queues a stack's asynchronous invocations and, once Run, runs them. It is safe for
// concurrent use.
type Queue struct {
	cfg    Config
	log    *slog.Logger
	events jetstream.Stream
	dead   jetstream.Stream
	sched  jetstream.Stream
	fires  jetstream.Consumer
	bus    jetstream.Stream // the stack's published messages, for event sources

	mu        sync.Mutex
	consumers map[string]bool // functions whose consumer exists, as far as this node knows
	poke      chan struct{}

	slots chan struct{}
	wg    sync.WaitGroup // handlers running

	counts counters
}

// StreamName and DeadLetterStreamName are the streams of a stack's events and of its dead letters.
func StreamName(stack string) string           { return "gh_" + stack + "_async" }
func DeadLetterStreamName(stack string) string { return "gh_" + stack + "_async_dead" }

func (q *Queue) subject(function string) string { return "gh." + q.cfg.Stack + ".async." + function }
func (q *Queue) deadSubject(function string) string {
	return "gh." + q.cfg.Stack + ".asyncdead." + function
}

// consumerName is the durable consumer of a function's events.
func consumerName(function string) string { return "fn_" + function }

// Open binds to (creating them the first time) the stack's event and dead-letter streams.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4 * runtime.GOMAXPROCS(0)
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 30
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "000000000000"
	}
	if cfg.NewRequestID == nil {
		cfg.NewRequestID = func() string { return nats.NewInbox()[len(nats.InboxPrefix):] }
	}
	q := &Queue{cfg: cfg, log: cfg.Logger, consumers: map[string]bool{}, poke: make(chan struct{}, 1),
		slots: make(chan struct{}, cfg.Concurrency)}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	var err error
	q.events, err = jsopen.Stream(ctx, cfg.JS, jetstream.StreamConfig{
		Name: StreamName(cfg.Stack), Description: "Gatehouse asynchronous invocations of stack " + cfg.Stack,
		Subjects: []string{q.subject("*")}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
		MaxBytes: cfg.MaxBytes, Discard: jetstream.DiscardNew, MaxMsgSize: spec.MaxAsyncPayload + 4096,
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	q.dead, err = jsopen.Stream(ctx, cfg.JS, jetstream.StreamConfig{
		Name: DeadLetterStreamName(cfg.Stack), Description: "Gatehouse asynchronous invocations of stack " + cfg.Stack + " that failed",
		Subjects: []string{q.deadSubject("*")}, Storage: jetstream.FileStorage,
		MaxAge: DeadLetterMaxAge, MaxBytes: 256 << 20, Discard: jetstream.DiscardOld,
	})
	if err != nil {
		return nil, err
	}
	if err := q.openSchedules(ctx); err != nil {
		return nil, err
	}
	if err := q.openEvents(ctx); err != nil {
		return nil, err
	}
	return q, nil
}

// DeadLetterMaxAge is how long the dead-letter stream keeps a record.
const DeadLetterMaxAge = 14 * 24 * time.Hour

// Enqueue queues ev. It returns once JetStream has stored it: from then on it runs at least once,
// whichever node runs it.
func (q *Queue) Enqueue(ctx context.Context, ev Event) error {
	if len(ev.Payload) > spec.MaxAsyncPayload {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(ev.Payload), spec.MaxAsyncPayload)
	}
	if err := q.ensureConsumer(ctx, ev.Function); err != nil {
		return err
	}
	return q.publish(ctx, q.eventMsg(ev, 0, time.Now().UnixMilli(), time.Time{}), ev.RequestID+"/0")
}

// eventMsg is the queue's message of ev: its attempt-th run (0 for the first), first queued at
// queuedMs (Unix milliseconds), not to run before notBefore (zero: at once).
func (q *Queue) eventMsg(ev Event, attempt int, queuedMs int64, notBefore time.Time) *nats.Msg {
	m := nats.NewMsg(q.subject(ev.Function))
	m.Data = ev.Payload
	m.Header.Set(hdrRequestID, ev.RequestID)
	if ev.Qualifier != "" {
		m.Header.Set(hdrQualifier, ev.Qualifier)
	}
	m.Header.Set(hdrAttempt, strconv.Itoa(attempt))
	m.Header.Set(hdrQueued, strconv.FormatInt(queuedMs, 10))
	if !notBefore.IsZero() {
		m.Header.Set(hdrNotBefore, strconv.FormatInt(notBefore.UnixMilli(), 10))
	}
	return m
}

// storeFull reports a publish refused because its stream holds its maximum bytes.
func storeFull(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == 10077 /* stream store failed */ || strings.Contains(api.Description, "maximum bytes"))
}

// publish stores m, with msgID for JetStream's duplicate detection (a publish sent again after a
// lost acknowledgement stores one message).
func (q *Queue) publish(ctx context.Context, m *nats.Msg, msgID string) error {
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if _, err = q.cfg.JS.PublishMsg(ctx, m); err == nil || !jsopen.Transient(err) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(100*(attempt+1)) * time.Millisecond):
		}
	}
	if storeFull(err) {
		return ErrQueueFull
	}
	if err != nil {
		return fmt.Errorf("queueing the event: %w", err)
	}
	return nil
}

// ensureConsumer makes the durable consumer of function's events, once per node and function.
func (q *Queue) ensureConsumer(ctx context.Context, function string) error {
	q.mu.Lock()
	known := q.consumers[function]
	q.mu.Unlock()
	if known {
		return nil
	}
	cfg := jetstream.ConsumerConfig{
		Durable: consumerName(function), Description: "Gatehouse asynchronous invocations of " + function,
		FilterSubject: q.subject(function), AckPolicy: jetstream.AckExplicitPolicy, AckWait: q.cfg.AckWait,
		MaxDeliver: -1, MaxAckPending: 10000, DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		// In a cluster, a consumer's group may be electing its leader: try again a few times.
		if _, err = q.events.CreateOrUpdateConsumer(ctx, cfg); err == nil || !jsopen.Transient(err) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(200*(attempt+1)) * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("making the queue of function %s: %w", function, err)
	}
	q.mu.Lock()
	q.consumers[function] = true
	q.mu.Unlock()
	select {
	case q.poke <- struct{}{}:
	default:
	}
	return nil
}

// Run runs the queued events until ctx ends, then waits for the invocations running to end. Each
// function's consumer is looked for every second, so events queued through another node start here
// too.
func (q *Queue) Run(ctx context.Context) {
	running := map[string]bool{}
	var loops sync.WaitGroup
	loops.Add(1)
	go func() {
		defer loops.Done()
		q.runFires(ctx)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sources := map[string]context.CancelFunc{}
	for {
		q.runSources(ctx, sources, func(f func()) {
			loops.Add(1)
			go func() {
				defer loops.Done()
				f()
			}()
		})
		lister := q.events.ListConsumers(ctx)
		for info := range lister.Info() {
			fn, ok := strings.CutPrefix(info.Name, "fn_")
			if !ok || running[fn] {
				continue
			}
			cons, err := q.events.Consumer(ctx, info.Name)
			if err != nil {
				continue
			}
			running[fn] = true
			q.mu.Lock()
			q.consumers[fn] = true
			q.mu.Unlock()
			loops.Add(1)
			go func() {
				defer loops.Done()
				q.consume(ctx, fn, cons)
			}()
		}
		if err := lister.Err(); err != nil && ctx.Err() == nil {
			q.log.Debug("listing the asynchronous queues", "error", err)
		}
		select {
		case <-ctx.Done():
			loops.Wait()
			q.wg.Wait()
			return
		case <-tick.C:
		case <-q.poke:
		}
	}
}

// maxFetch bounds the events one fetch takes for a function.
const maxFetch = 16

// consume takes function's events while ctx lasts, at most Config.Concurrency of them at a time.
func (q *Queue) consume(ctx context.Context, function string, cons jetstream.Consumer) {
	tokens := make(chan struct{}, q.cfg.Concurrency)
	for i := 0; i < cap(tokens); i++ {
		tokens <- struct{}{}
	}
	for ctx.Err() == nil {
		select {
		case <-tokens:
		case <-ctx.Done():
			return
		}
		n := 1
	more:
		for n < maxFetch {
			select {
			case <-tokens:
				n++
			default:
				break more
			}
		}
		fctx, fcancel := context.WithTimeout(ctx, 2*time.Second)
		batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
		got := 0
		if err == nil {
			for m := range batch.Messages() {
				got++
				q.wg.Add(1)
				go func() {
					defer q.wg.Done()
					defer func() { tokens <- struct{}{} }()
					q.handle(ctx, function, m)
				}()
			}
			err = batch.Error()
		}
		fcancel()
		for ; got < n; got++ {
			tokens <- struct{}{}
		}
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				return
			}
			q.log.Debug("fetching asynchronous invocations", "function", function, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

// handle runs one event taken from the queue and settles it: acknowledged once it succeeded, or was
// queued again for a retry, or went to its failure destination; put back for later when it did not
// run (its function was at its concurrency limit, or no worker had room).
func (q *Queue) handle(ctx context.Context, function string, m jetstream.Msg) {
	h := m.Headers()
	ev := Event{Function: function, Qualifier: h.Get(hdrQualifier), RequestID: h.Get(hdrRequestID), Payload: m.Data()}
	attempt, _ := strconv.Atoi(h.Get(hdrAttempt))
	queuedMs, _ := strconv.ParseInt(h.Get(hdrQueued), 10, 64)
	queued := time.UnixMilli(queuedMs)
	now := time.Now()
	if nb, err := strconv.ParseInt(h.Get(hdrNotBefore), 10, 64); err == nil {
		if wait := time.UnixMilli(nb).Sub(now); wait > 0 {
			_ = m.NakWithDelay(wait)
			return
		}
	}
	log := q.log.With("function", function, "requestId", ev.RequestID)
	settings, err := q.cfg.Settings(function, ev.Qualifier)
	if err != nil {
		if errors.Is(err, functions.ErrNotFound) {
			q.fail(ctx, m, ev, spec.DefaultAsyncSettings(), conditionNotFound, attempt, 0,
				bus.FunctionFailure{ErrorType: "ResourceNotFoundException", ErrorMessage: err.Error()})
			return
		}
		log.Warn("asynchronous invocation: reading the function's settings", "error", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	if now.Sub(queued) > settings.MaximumEventAge.D() {
		q.fail(ctx, m, ev, settings, conditionAgeExceeded, attempt, 0, bus.FunctionFailure{
			ErrorType: "EventAgeExceeded", ErrorMessage: fmt.Sprintf("the event waited longer than its maximum age of %s", spec.FormatDuration(settings.MaximumEventAge.D()))})
		return
	}

	// A turn of this node's asynchronous work, JetStream told meanwhile that the event is taken.
	stop := q.keepTaken(m)
	defer stop()
	select {
	case q.slots <- struct{}{}:
	case <-ctx.Done():
		_ = m.Nak()
		return
	}
	defer func() { <-q.slots }()

	// The invocation runs to its end even when the node is stopping: Run waits for it.
	out, version, err := q.cfg.Invoke(context.WithoutCancel(ctx), function, ev.Qualifier, ev.Payload, ev.RequestID)
	switch {
	case err == nil:
		if settings.OnSuccess != "" {
			rec := q.record(ev, conditionSuccess, attempt+1, version, out, nil)
			q.toDestination(ctx, settings.OnSuccess, function, rec, log)
		}
		_ = m.DoubleAck(ctx)
		q.counts.outcome(function, outcomeSucceeded)
		log.Debug("asynchronous invocation succeeded", "attempt", attempt+1)
	case notRun(err):
		// Throttled or no room: not an attempt. Lambda retries these until the event's age runs out.
		q.counts.outcome(function, outcomeThrottled)
		_ = m.NakWithDelay(redeliveryDelay(m))
	default:
		failure := failureOf(err)
		delay := settings.RetryDelay.D() << attempt
		if attempt < settings.MaximumRetryAttempts && time.Since(queued)+delay <= settings.MaximumEventAge.D() {
			if err := q.retry(ctx, m, ev, attempt+1, queuedMs, delay); err != nil {
				log.Warn("asynchronous invocation: queueing a retry", "error", err)
				_ = m.NakWithDelay(delay)
				return
			}
			q.counts.outcome(function, outcomeRetried)
			log.Info("asynchronous invocation failed; retrying", "attempt", attempt+1, "errorType", failure.ErrorType, "retryIn", delay)
			return
		}
		condition := conditionRetriesExhausted
		if attempt < settings.MaximumRetryAttempts {
			condition = conditionAgeExceeded
		}
		q.fail(ctx, m, ev, settings, condition, attempt+1, version, failure)
	}
}

// keepTaken tells JetStream every AckWait/3 that m is still being worked on, until the returned
// function is called.
func (q *Queue) keepTaken(m jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(q.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// redeliveryDelay is how long m is put back for: 1s, 2s, … with its deliveries, up to 30s.
func redeliveryDelay(m jetstream.Msg) time.Duration {
	n := uint64(1)
	if meta, err := m.Metadata(); err == nil {
		n = meta.NumDelivered
	}
	return min(time.Duration(n)*time.Second, 30*time.Second)
}

// notRun reports an error that means the function did not run.
func notRun(err error) bool {
	return errors.Is(err, bus.ErrThrottled) || errors.Is(err, bus.ErrOverloaded) || errors.Is(err, bus.ErrNoWorkers)
}

// failureOf is the error record of a failed invocation, as a synchronous caller sees it.
func failureOf(err error) bus.FunctionFailure {
	switch {
	case errors.Is(err, bus.ErrFunctionError):
		return bus.FailureOf(err, bus.FunctionFailure{ErrorType: "FunctionError", ErrorMessage: "the function failed"})
	case errors.Is(err, bus.ErrFunctionTimeout):
		return bus.FailureOf(err, bus.FunctionFailure{ErrorType: "Sandbox.Timedout", ErrorMessage: "Task timed out"})
	case errors.Is(err, bus.ErrResponseTooLarge):
		return bus.FunctionFailure{ErrorType: "ResponseTooLarge", ErrorMessage: "the function's response is over the limit"}
	case errors.Is(err, functions.ErrNotFound):
		return bus.FunctionFailure{ErrorType: "ResourceNotFoundException", ErrorMessage: err.Error()}
	}
	return bus.FunctionFailure{ErrorType: "ServiceException", ErrorMessage: err.Error()}
}

// retry queues ev again as attempt, to run after delay, then acknowledges m. A node that dies
// between the two runs the event once more than asked (at least once).
func (q *Queue) retry(ctx context.Context, m jetstream.Msg, ev Event, attempt int, queuedMs int64, delay time.Duration) error {
	r := q.eventMsg(ev, attempt, queuedMs, time.Now().Add(delay))
	if err := q.publish(ctx, r, ev.RequestID+"/"+strconv.Itoa(attempt)); err != nil {
		return err
	}
	return m.DoubleAck(ctx)
}

// Conditions of an invocation record.
const (
	conditionSuccess          = "Success"
	conditionRetriesExhausted = "RetriesExhausted"
	conditionAgeExceeded      = "EventAgeExceeded"
	conditionNotFound         = "FunctionNotFound"
	// conditionReceiveCount is an event source's record that failed its maxReceiveCount-th delivery.
	conditionReceiveCount = "MaxReceiveCountExceeded"
)

// fail sends ev's failure record to the function's failure destination, or to the dead-letter
// stream, then acknowledges m.
func (q *Queue) fail(ctx context.Context, m jetstream.Msg, ev Event, settings spec.AsyncSettings, condition string, invokes, version int, failure bus.FunctionFailure) {
	log := q.log.With("function", ev.Function, "requestId", ev.RequestID)
	out, _ := json.Marshal(failure)
	rec := q.record(ev, condition, invokes, version, out, &failure)
	log.Warn("asynchronous invocation failed for good", "condition", condition, "errorType", failure.ErrorType, "invocations", invokes)
	q.counts.outcome(ev.Function, outcomeFailed)
	if settings.OnFailure == "" || !q.toDestination(ctx, settings.OnFailure, ev.Function, rec, log) {
		seq := uint64(0)
		if meta, err := m.Metadata(); err == nil {
			seq = meta.Sequence.Stream
		}
		if err := q.toDeadLetters(ctx, ev, condition, rec, seq); err != nil {
			log.Error("asynchronous invocation: keeping the dead letter", "error", err)
			_ = m.NakWithDelay(5 * time.Second) // kept in the queue rather than lost
			return
		}
	}
	_ = m.DoubleAck(ctx)
}

// toDestination queues rec for the destination function, or publishes it on the destination
// subject; false when it could not.
func (q *Queue) toDestination(ctx context.Context, dest, from string, rec []byte, log *slog.Logger) bool {
	var err error
	if subj, ok := spec.DestinationSubject(dest); ok {
		_, err = q.Publish(ctx, subj, rec, "")
	} else {
		var fn string
		if fn, err = spec.DestinationFunction(dest); err == nil {
			err = q.Enqueue(ctx, Event{Function: fn, RequestID: q.cfg.NewRequestID(), Payload: rec})
		}
	}
	if err != nil {
		log.Warn("asynchronous invocation: sending the record to its destination", "destination", dest, "error", err)
		return false
	}
	return true
}

// toDeadLetters stores rec, the record of ev taken from the queue's message seq.
func (q *Queue) toDeadLetters(ctx context.Context, ev Event, condition string, rec []byte, seq uint64) error {
	d := nats.NewMsg(q.deadSubject(ev.Function))
	d.Data = rec
	d.Header.Set(hdrRequestID, ev.RequestID)
	d.Header.Set(hdrCondition, condition)
	if ev.Qualifier != "" {
		d.Header.Set(hdrQualifier, ev.Qualifier)
	}
	if len(bytes.TrimSpace(ev.Payload)) > 0 && !json.Valid(ev.Payload) {
		d.Header.Set(hdrPayloadText, "1")
	}
	d.Header.Set(jetstream.MsgIDHeader, "dead/"+ev.RequestID+"/"+strconv.FormatUint(seq, 10))
	_, err := q.cfg.JS.PublishMsg(ctx, d)
	return err
}

// Record is Lambda's invocation record, what a destination receives.
type Record struct {
	Version         string          `json:"version"`
	Timestamp       string          `json:"timestamp"`
	RequestContext  RecordRequest   `json:"requestContext"`
	RequestPayload  json.RawMessage `json:"requestPayload"`
	ResponseContext RecordResponse  `json:"responseContext"`
	ResponsePayload json.RawMessage `json:"responsePayload"`
}

// RecordRequest is an invocation record's requestContext.
type RecordRequest struct {
	RequestID              string `json:"requestId"`
	FunctionARN            string `json:"functionArn"`
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// RecordResponse is an invocation record's responseContext.
type RecordResponse struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// record builds ev's invocation record.
func (q *Queue) record(ev Event, condition string, invokes, version int, out []byte, failure *bus.FunctionFailure) []byte {
	qualifier := ev.Qualifier
	if qualifier == "" {
		qualifier = "$LATEST"
	}
	arn := ev.Function
	if q.cfg.FunctionARN != nil {
		arn = q.cfg.FunctionARN(ev.Function)
	}
	executed := "$LATEST"
	if version > 0 {
		executed = strconv.Itoa(version)
	}
	r := Record{
		Version: "1.0", Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		RequestContext:  RecordRequest{RequestID: ev.RequestID, FunctionARN: arn + ":" + qualifier, Condition: condition, ApproximateInvokeCount: invokes},
		RequestPayload:  asJSON(ev.Payload),
		ResponseContext: RecordResponse{StatusCode: 200, ExecutedVersion: executed},
		ResponsePayload: asJSON(out),
	}
	if failure != nil {
		r.ResponseContext.FunctionError = "Unhandled"
	}
	b, _ := json.Marshal(r)
	return b
}

// asJSON is b when it is JSON, else b as a JSON string; null when empty.
func asJSON(b []byte) json.RawMessage {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// Stats are a function's queue as JetStream counts it.
type Stats struct {
	Function string `json:"function"`
	// Source is, for an event source's queue, its subject; "" for the function's asynchronous
	// invocations.
	Source string `json:"source,omitempty"`
	// Queued counts the events not yet taken (retries waiting for their time included once put back).
	Queued uint64 `json:"queued"`
	// InFlight counts the events taken and not yet settled: running, or waiting for a turn.
	InFlight int `json:"inFlight"`
	// Redelivered counts events given out more than once and not yet settled.
	Redelivered int `json:"redelivered"`
	// DeadLetters counts the function's records in the dead-letter stream.
	DeadLetters uint64 `json:"deadLetters"`
}

// Stats returns every function's queue that has one, sorted by function.
func (q *Queue) Stats(ctx context.Context) ([]Stats, error) {
	dead := map[string]uint64{}
	info, err := q.dead.Info(ctx, jetstream.WithSubjectFilter(q.deadSubject("*")))
	if err != nil {
		return nil, err
	}
	for subj, n := range info.State.Subjects {
		dead[subj[strings.LastIndexByte(subj, '.')+1:]] = n
	}
	var out []Stats
	lister := q.events.ListConsumers(ctx)
	for ci := range lister.Info() {
		fn, ok := strings.CutPrefix(ci.Name, "fn_")
		if !ok {
			continue
		}
		out = append(out, Stats{Function: fn, Queued: ci.NumPending, InFlight: ci.NumAckPending, Redelivered: ci.NumRedelivered, DeadLetters: dead[fn]})
		delete(dead, fn)
	}
	if err := lister.Err(); err != nil {
		return nil, err
	}
	for fn, n := range dead {
		out = append(out, Stats{Function: fn, DeadLetters: n})
	}
	srcs := q.bus.ListConsumers(ctx)
	for ci := range srcs.Info() {
		if src, ok := sourceOf(ci); ok {
			out = append(out, Stats{Function: src.function, Source: src.subject, Queued: ci.NumPending, InFlight: ci.NumAckPending, Redelivered: ci.NumRedelivered})
		}
	}
	if err := srcs.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Stats) int {
		return cmp.Or(strings.Compare(a.Function, b.Function), strings.Compare(a.Source, b.Source))
	})
	return out, nil
}

// hdrPayloadText marks a dead letter whose event was not JSON: its record holds the event as a JSON
// string, which a re-drive unwraps.
const hdrPayloadText = "Gh-Payload-Text"

// Redrive queues the function's dead letters again as new asynchronous invocations (under their
// request ids, with their attempts counted afresh) and removes them from the dead-letter stream. It
// returns how many it queued; one that cannot be read is left where it is.
func (q *Queue) Redrive(ctx context.Context, function string) (int, error) {
	info, err := q.dead.Info(ctx, jetstream.WithSubjectFilter(q.deadSubject(function)))
	if err != nil {
		return 0, err
	}
	pending := info.State.Subjects[q.deadSubject(function)]
	if pending == 0 {
		return 0, nil
	}
	cons, err := q.dead.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{q.deadSubject(function)}})
	if err != nil {
		return 0, err
	}
	if err := q.ensureConsumer(ctx, function); err != nil {
		return 0, err
	}
	done := 0
	for uint64(done) < pending {
		batch, err := cons.Fetch(min(int(pending)-done, 256), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return done, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			var rec Record
			if err := json.Unmarshal(m.Data(), &rec); err != nil {
				q.log.Warn("re-drive: a dead letter that is not a record", "function", function, "seq", meta.Sequence.Stream)
				continue
			}
			payload := []byte(rec.RequestPayload)
			if m.Headers().Get(hdrPayloadText) != "" {
				var s string
				if json.Unmarshal(rec.RequestPayload, &s) == nil {
					payload = []byte(s)
				}
			}
			if string(payload) == "null" {
				payload = nil
			}
			ev := Event{Function: function, Qualifier: m.Headers().Get(hdrQualifier), RequestID: rec.RequestContext.RequestID, Payload: payload}
			em := q.eventMsg(ev, 0, time.Now().UnixMilli(), time.Time{})
			if err := q.publish(ctx, em, "redrive/"+strconv.FormatUint(meta.Sequence.Stream, 10)); err != nil {
				return done, err
			}
			if err := q.dead.DeleteMsg(ctx, meta.Sequence.Stream); err != nil {
				return done, err
			}
			done++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return done, err
		}
		if got == 0 {
			break
		}
	}
	q.log.Info("dead letters queued again", "function", function, "count", done)
	return done, nil
}
