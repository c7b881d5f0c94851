package async

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/jsopen"
	"gatehouse.dev/gatehouse/internal/spec"
)

// The stack's event bus: what is published on the stack's subjects (orders.created is
// gh.<stack>.ev.orders.created on the bus) is kept in the stream gh_<stack>_events, and each event
// source of a function is a durable consumer of it (src_<function>_<n>) filtered on its subject,
// which every node runs: batches go to the function as SQS-like Records, at most one batch of a
// source in flight, so records reach the function in the order they were published while batches
// succeed.

// EventsStreamName is the stream of a stack's published messages.
func EventsStreamName(stack string) string { return "gh_" + stack + "_events" }

// EventsMaxAge is how long the stack's event stream keeps a message.
const EventsMaxAge = 7 * 24 * time.Hour

func (q *Queue) busSubject(subject string) string { return "gh." + q.cfg.Stack + ".ev." + subject }

func (q *Queue) openEvents(ctx context.Context) error {
	var err error
	q.bus, err = jsopen.Stream(ctx, q.cfg.JS, jetstream.StreamConfig{
		Name: EventsStreamName(q.cfg.Stack), Description: "Gatehouse messages published on the subjects of stack " + q.cfg.Stack,
		Subjects: []string{q.busSubject(">")}, Storage: jetstream.FileStorage, MaxAge: EventsMaxAge,
		MaxBytes: q.cfg.MaxBytes, Discard: jetstream.DiscardNew, MaxMsgSize: spec.MaxAsyncPayload + 4096, Duplicates: 2 * time.Minute,
	})
	return err
}

// Publish stores data as a message on subject of the stack's event bus (no wildcards) and returns
// its sequence number; msgID, when set, makes a second publish with it within two minutes a no-op.
func (q *Queue) Publish(ctx context.Context, subject string, data []byte, msgID string) (uint64, error) {
	if err := spec.CheckSubject(subject, false); err != nil {
		return 0, err
	}
	if len(data) > spec.MaxAsyncPayload {
		return 0, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), spec.MaxAsyncPayload)
	}
	m := nats.NewMsg(q.busSubject(subject))
	m.Data = data
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ack, err := q.cfg.JS.PublishMsg(ctx, m)
	if storeFull(err) {
		return 0, ErrQueueFull
	}
	if err != nil {
		return 0, fmt.Errorf("publishing on %s: %w", subject, err)
	}
	return ack.Sequence, nil
}

// SourceOf is one event source of a function, for SetSources.
type SourceOf struct {
	Function string
	spec.EventSource
}

func sourceConsumer(function string, n int) string { return "src_" + function + "_" + strconv.Itoa(n) }

// SetSources makes the stack's event sources those given. A source whose subject or starting
// position changed starts over; other changes apply to the next batch.
func (q *Queue) SetSources(ctx context.Context, sources []SourceOf) error {
	want := map[string]bool{}
	count := map[string]int{}
	var errs []error
	for _, s := range sources {
		n := count[s.Function]
		count[s.Function]++
		name := sourceConsumer(s.Function, n)
		want[name] = true
		deliver := jetstream.DeliverNewPolicy
		if s.StartingPosition == spec.StartTrimHorizon {
			deliver = jetstream.DeliverAllPolicy
		}
		cfg := jetstream.ConsumerConfig{
			Durable: name, Description: "Gatehouse event source " + s.Subject + " of " + s.Function,
			FilterSubject: q.busSubject(s.Subject), DeliverPolicy: deliver, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: q.cfg.AckWait, MaxDeliver: -1, MaxAckPending: s.BatchSize,
			Metadata: map[string]string{"function": s.Function, "subject": s.Subject, "batchSize": strconv.Itoa(s.BatchSize),
				"batchWindow": s.BatchWindow.D().String(), "maxReceiveCount": strconv.Itoa(s.MaxReceiveCount)},
		}
		if cur, err := q.bus.Consumer(ctx, name); err == nil {
			c := cur.CachedInfo().Config
			if c.FilterSubject != cfg.FilterSubject || c.DeliverPolicy != cfg.DeliverPolicy {
				if err := q.bus.DeleteConsumer(ctx, name); err != nil {
					errs = append(errs, err)
					continue
				}
			}
		}
		if _, err := q.bus.CreateOrUpdateConsumer(ctx, cfg); err != nil {
			errs = append(errs, fmt.Errorf("event source %s of %s: %w", s.Subject, s.Function, err))
			continue
		}
	}
	lister := q.bus.ListConsumers(ctx)
	for info := range lister.Info() {
		if strings.HasPrefix(info.Name, "src_") && !want[info.Name] {
			if err := q.bus.DeleteConsumer(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				errs = append(errs, err)
			}
		}
	}
	if err := lister.Err(); err != nil {
		errs = append(errs, err)
	}
	select {
	case q.poke <- struct{}{}:
	default:
	}
	return errors.Join(errs...)
}

// source is an event source as its consumer's metadata describes it.
type source struct {
	name, function, subject string
	batchSize, maxReceive   int
	window                  time.Duration
}

func sourceOf(info *jetstream.ConsumerInfo) (source, bool) {
	md := info.Config.Metadata
	s := source{name: info.Name, function: md["function"], subject: md["subject"]}
	var err1, err2, err3 error
	s.batchSize, err1 = strconv.Atoi(md["batchSize"])
	s.maxReceive, err2 = strconv.Atoi(md["maxReceiveCount"])
	s.window, err3 = time.ParseDuration(md["batchWindow"])
	return s, s.function != "" && err1 == nil && err2 == nil && err3 == nil && s.batchSize > 0
}

// runSources starts a loop for each event source, as Run does for the functions' queues.
func (q *Queue) runSources(ctx context.Context, running map[string]context.CancelFunc, start func(func())) {
	lister := q.bus.ListConsumers(ctx)
	seen := map[string]bool{}
	for info := range lister.Info() {
		if !strings.HasPrefix(info.Name, "src_") {
			continue
		}
		seen[info.Name] = true
		if running[info.Name] != nil {
			continue
		}
		src, ok := sourceOf(info)
		if !ok {
			continue
		}
		cons, err := q.bus.Consumer(ctx, info.Name)
		if err != nil {
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		running[info.Name] = cancel
		start(func() { q.consumeSource(sctx, src, cons) })
	}
	if lister.Err() != nil {
		return // keep what runs
	}
	for name, cancel := range running {
		if !seen[name] {
			cancel() // the source was removed
			delete(running, name)
		}
	}
}

// consumeSource runs batches of src until ctx ends.
func (q *Queue) consumeSource(ctx context.Context, src source, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		batch := q.takeBatch(ctx, src, cons)
		if len(batch) == 0 {
			continue
		}
		q.wg.Add(1)
		q.runBatch(ctx, src, batch)
		q.wg.Done()
	}
}

// takeBatch waits for a first message, then up to the source's window for the batch to fill.
func (q *Queue) takeBatch(ctx context.Context, src source, cons jetstream.Consumer) []jetstream.Msg {
	var msgs []jetstream.Msg
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	first, err := cons.Fetch(1, jetstream.FetchContext(fctx))
	if err == nil {
		for m := range first.Messages() {
			msgs = append(msgs, m)
		}
		err = first.Error()
	}
	cancel()
	if len(msgs) == 0 {
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			q.log.Debug("fetching an event source", "source", src.name, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		return nil
	}
	if src.batchSize > 1 {
		var more jetstream.MessageBatch
		if src.window > 0 {
			wctx, cancel := context.WithTimeout(ctx, src.window)
			defer cancel()
			more, err = cons.Fetch(src.batchSize-1, jetstream.FetchContext(wctx))
		} else {
			more, err = cons.FetchNoWait(src.batchSize - 1)
		}
		if err == nil {
			for m := range more.Messages() {
				msgs = append(msgs, m)
			}
		}
	}
	return msgs
}

// sqsRecord is one record of an event source's batch, in the shape of an SQS message event.
type sqsRecord struct {
	MessageID         string                  `json:"messageId"`
	ReceiptHandle     string                  `json:"receiptHandle"`
	Body              string                  `json:"body"`
	Attributes        map[string]string       `json:"attributes"`
	MessageAttributes map[string]sqsAttribute `json:"messageAttributes"`
	MD5OfBody         string                  `json:"md5OfBody"`
	EventSource       string                  `json:"eventSource"`
	EventSourceARN    string                  `json:"eventSourceARN"`
	AWSRegion         string                  `json:"awsRegion"`
}

type sqsAttribute struct {
	StringValue string `json:"stringValue"`
	DataType    string `json:"dataType"`
}

// records builds the Records event of msgs.
func (q *Queue) records(src source, msgs []jetstream.Msg, taken time.Time) ([]byte, []string) {
	region, account := q.cfg.Region, q.cfg.AccountID
	recs := make([]sqsRecord, 0, len(msgs))
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		meta, _ := m.Metadata()
		var seq, delivered uint64
		var sent time.Time
		if meta != nil {
			seq, delivered, sent = meta.Sequence.Stream, meta.NumDelivered, meta.Timestamp
		}
		id := strconv.FormatUint(seq, 10)
		ids = append(ids, id)
		body, attrs := m.Data(), map[string]string{
			"ApproximateReceiveCount":          strconv.FormatUint(delivered, 10),
			"SentTimestamp":                    strconv.FormatInt(sent.UnixMilli(), 10),
			"ApproximateFirstReceiveTimestamp": strconv.FormatInt(taken.UnixMilli(), 10),
			"SequenceNumber":                   id,
		}
		text := string(body)
		if !utf8.Valid(body) {
			text = base64.StdEncoding.EncodeToString(body)
			attrs["BodyEncoding"] = "base64"
		}
		sum := md5.Sum([]byte(text))
		subject := strings.TrimPrefix(m.Subject(), "gh."+q.cfg.Stack+".ev.")
		mattrs := map[string]sqsAttribute{"subject": {StringValue: subject, DataType: "String"}}
		for k, v := range m.Headers() {
			if strings.HasPrefix(k, "Nats-") || len(v) == 0 {
				continue
			}
			mattrs[k] = sqsAttribute{StringValue: v[0], DataType: "String"}
		}
		recs = append(recs, sqsRecord{MessageID: id, ReceiptHandle: src.name + "/" + id, Body: text, Attributes: attrs,
			MessageAttributes: mattrs, MD5OfBody: hex.EncodeToString(sum[:]), EventSource: "gatehouse:events",
			EventSourceARN: "arn:aws:sqs:" + region + ":" + account + ":" + q.cfg.Stack + "-" + src.name, AWSRegion: region})
	}
	b, _ := json.Marshal(struct {
		Records []sqsRecord `json:"Records"`
	}{recs})
	return b, ids
}

// runBatch invokes the source's function with msgs and settles each: acknowledged when it
// succeeded; put back, after a pause that grows with its deliveries, when it failed; set aside as a
// dead letter when it failed its maxReceiveCount-th delivery.
func (q *Queue) runBatch(ctx context.Context, src source, msgs []jetstream.Msg) {
	payload, ids := q.records(src, msgs, time.Now())
	stop := make([]func(), 0, len(msgs))
	for _, m := range msgs {
		stop = append(stop, q.keepTaken(m))
	}
	defer func() {
		for _, s := range stop {
			s()
		}
	}()
	select {
	case q.slots <- struct{}{}:
	case <-ctx.Done():
		for _, m := range msgs {
			_ = m.Nak()
		}
		return
	}
	requestID := q.cfg.NewRequestID()
	out, version, err := q.cfg.Invoke(context.WithoutCancel(ctx), src.function, "", payload, requestID)
	<-q.slots
	log := q.log.With("function", src.function, "source", src.subject, "requestId", requestID)
	if notRun(err) {
		q.counts.outcome(src.function, outcomeThrottled)
		for _, m := range msgs {
			_ = m.NakWithDelay(redeliveryDelay(m))
		}
		return
	}
	failed := map[string]bool{}
	var failure bus.FunctionFailure
	switch {
	case err != nil:
		failure = failureOf(err)
		for _, id := range ids {
			failed[id] = true
		}
	default:
		var resp struct {
			BatchItemFailures []struct {
				ItemIdentifier string `json:"itemIdentifier"`
			} `json:"batchItemFailures"`
		}
		if json.Unmarshal(out, &resp) == nil {
			for _, f := range resp.BatchItemFailures {
				failed[f.ItemIdentifier] = true
			}
		}
		for id := range failed {
			if !slices.Contains(ids, id) {
				// A failure naming no record of the batch: the whole batch failed, as in Lambda.
				log.Warn("event source: batchItemFailures names a record not in the batch; the whole batch is retried", "itemIdentifier", id)
				for _, id := range ids {
					failed[id] = true
				}
				break
			}
		}
		failure = bus.FunctionFailure{ErrorType: "BatchItemFailure", ErrorMessage: "the function reported the record failed"}
	}
	for i, m := range msgs {
		if !failed[ids[i]] {
			q.counts.outcome(src.function, outcomeSucceeded)
			_ = m.DoubleAck(ctx)
			continue
		}
		delivered := uint64(1)
		if meta, err := m.Metadata(); err == nil {
			delivered = meta.NumDelivered
		}
		if int(delivered) < src.maxReceive {
			q.counts.outcome(src.function, outcomeRetried)
			_ = m.NakWithDelay(redeliveryDelay(m))
			continue
		}
		one, _ := q.records(src, msgs[i:i+1], time.Now())
		ev := Event{Function: src.function, RequestID: requestID + "/" + ids[i], Payload: one}
		fout, _ := json.Marshal(failure)
		rec := q.record(ev, conditionReceiveCount, int(delivered), version, fout, &failure)
		log.Warn("event source: a record failed its last delivery; kept as a dead letter", "record", ids[i], "deliveries", delivered)
		q.counts.outcome(src.function, outcomeFailed)
		if err := q.toDeadLetters(ctx, ev, conditionReceiveCount, rec, 0); err != nil {
			log.Error("event source: keeping the dead letter", "error", err)
			_ = m.NakWithDelay(5 * time.Second)
			continue
		}
		_ = m.DoubleAck(ctx)
	}
}
