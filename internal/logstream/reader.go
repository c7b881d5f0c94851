package logstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/jsopen"
)

const (
	// fetchBatch is how many records Recent asks the server for at a time.
	fetchBatch = 256
	// maxProbes bounds the consumers Recent creates to find where to start reading. Every second
	// probe at least halves the range of sequences left, so this is never reached in practice; if it
	// were, Recent would read (and skip) more records, not fail.
	maxProbes = 64
	// consumerIdle is the inactive threshold of the consumers Recent and Follow create: the server
	// deletes one its reader abandoned (both delete their own when they return).
	consumerIdle = 30 * time.Second
	// cleanupTimeout bounds deleting a consumer once Recent is done, even when its context is.
	cleanupTimeout = 5 * time.Second
)

// Reader reads the stack's log stream. It is safe for concurrent use.
type Reader struct {
	js     jetstream.JetStream
	stack  string
	stream string

	mu sync.Mutex
	st jetstream.Stream // cached once found; nil before
}

// NewReader returns a Reader of the stack's log stream through js. It does no I/O.
func NewReader(js jetstream.JetStream, stack string) *Reader {
	return &Reader{js: js, stack: stack, stream: StreamName(stack)}
}

// handle returns the stream, looking it up the first time.
func (r *Reader) handle(ctx context.Context) (jetstream.Stream, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st != nil {
		return r.st, nil
	}
	st, err := r.js.Stream(ctx, r.stream)
	if err != nil {
		return nil, err
	}
	r.st = st
	return st, nil
}

// recentStats says how much work one Recent did; tests check it stays small.
type recentStats struct {
	probes  int // consumers created to find the start
	fetched int // records received from the server
}

// Recent returns the last limit records of the function, oldest first: fewer when the stream holds
// fewer, none when limit is 0. A record that does not decode is skipped, so a stream holding some
// returns fewer than limit records even when it holds more of the function's.
//
// Recent does not read the whole stream: the server counts the function's records, and Recent
// places a consumer filtered on the function at a start sequence with about limit records of the
// function from there to the end (each placement returns the count from that sequence; a few,
// usually one or two, are needed). It then reads at most about 1.5×limit+32 records of the function,
// and none of other functions.
//
// # Errors
//
// An invalid function name or a negative limit wraps [ErrInvalid]; a stack without a log stream
// wraps [jetstream.ErrStreamNotFound].
func (r *Reader) Recent(ctx context.Context, function string, limit int) ([]Record, error) {
	// In a cluster the log stream answers nothing for a moment while its group elects a leader
	// (a node lost or back, replicas raised): read again, for a few seconds, rather than fail.
	deadline := time.Now().Add(transientWait)
	for {
		recs, _, err := r.recent(ctx, function, limit)
		if err == nil || !jsopen.Transient(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return recs, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// transientWait bounds how long a read retries what a cluster refuses for a moment.
const transientWait = 5 * time.Second

func (r *Reader) recent(ctx context.Context, function string, limit int) (_ []Record, stats recentStats, err error) {
	if err := checkFunction(function); err != nil {
		return nil, stats, err
	}
	if limit < 0 {
		return nil, stats, fmt.Errorf("logstream: recent records of %s: limit %d: want 0 or more: %w", function, limit, ErrInvalid)
	}
	if limit == 0 {
		return nil, stats, nil
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("logstream: recent records of %s: %w", function, err)
		}
	}()
	st, err := r.handle(ctx)
	if err != nil {
		return nil, stats, err
	}
	subject := Subject(r.stack, function)
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, stats, err
	}
	total := info.State.Subjects[subject]
	if total == 0 {
		return nil, stats, nil
	}

	// Invariant: pending(lo) ≥ want > pending(hi), where pending(s) is the number of the function's
	// records at sequence s or later. Any start in [lo, hi) with pending at most want+slack will do.
	want := uint64(limit)
	slack := want/2 + 32
	lo, pLo := info.State.FirstSeq, total
	hi, pHi := info.State.LastSeq+1, uint64(0)
	var cons jetstream.Consumer // placed at lo, once a probe has placed one
	del := func(c jetstream.Consumer) {
		if c == nil {
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		// Best effort: the server deletes an abandoned consumer after consumerIdle anyway.
		_ = r.js.DeleteConsumer(dctx, r.stream, c.CachedInfo().Name)
	}
	defer func() { del(cons) }()

	bisect := false
	for pLo > want+slack && hi-lo > 1 && stats.probes < maxProbes {
		var s uint64
		if bisect {
			s = lo + (hi-lo)/2
		} else {
			// Interpolate, aiming at pending = want + slack/2, as if the function's records were
			// spread evenly over [lo, hi).
			target := want + slack/2
			frac := float64(pLo-target) / float64(pLo-pHi)
			s = lo + uint64(frac*float64(hi-lo))
		}
		s = max(lo+1, min(s, hi-1))
		width := hi - lo

		c, err := r.place(ctx, subject, s)
		stats.probes++
		if err != nil {
			return nil, stats, err
		}
		p := c.CachedInfo().NumPending
		if p >= want {
			del(cons)
			cons, lo, pLo = c, s, p
		} else {
			del(c)
			hi, pHi = s, p
		}
		// Fall back to bisection while interpolation does not at least halve the range.
		bisect = hi-lo > width/2
	}
	if cons == nil {
		if cons, err = r.place(ctx, subject, lo); err != nil {
			return nil, stats, err
		}
		stats.probes++
		pLo = cons.CachedInfo().NumPending
	}

	// Read the pLo records from lo, keeping the last want that decode.
	out := make([]Record, 0, min(want, pLo))
	for read := uint64(0); read < pLo; {
		if err := ctx.Err(); err != nil {
			return nil, stats, err
		}
		batch, err := cons.FetchNoWait(int(min(pLo-read, fetchBatch)))
		if err != nil {
			return nil, stats, err
		}
		n, last := 0, false
		for msg := range batch.Messages() {
			n++
			var rec Record
			if md, err := msg.Metadata(); err == nil {
				last = last || md.NumPending == 0
				rec.Seq = md.Sequence.Stream
			}
			if json.Unmarshal(msg.Data(), &rec) != nil {
				continue
			}
			if uint64(len(out)) == want {
				copy(out, out[1:])
				out = out[:want-1]
			}
			out = append(out, rec)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, stats, err
		}
		stats.fetched += n
		read += uint64(n)
		// Records the limits discarded meanwhile are never delivered: stop when none are left.
		if n == 0 || last {
			break
		}
	}
	return out, stats, nil
}

// place creates an ephemeral consumer of the function's records from sequence start on. The server's
// answer says how many there are (NumPending).
func (r *Reader) place(ctx context.Context, subject string, start uint64) (jetstream.Consumer, error) {
	return r.js.CreateConsumer(ctx, r.stream, jetstream.ConsumerConfig{
		Description:       "Gatehouse recent logs",
		FilterSubject:     subject,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: consumerIdle,
		MemoryStorage:     true,
		Replicas:          1,
	})
}

// Follow calls each for every record of the function published after Follow starts (not before),
// in order, until ctx is done (then it returns nil) or each returns an error (then it returns that
// error). each runs on Follow's goroutine, one record at a time. A record that does not decode is
// skipped.
//
// Follow reads through an ordered consumer that starts with the records published after it is
// created; the consumer re-creates itself after a lost connection or a missed record, from the last
// record it delivered. A re-creation before the first record was delivered starts again with the
// records published after it, so records published in between are not followed.
//
// # Errors
//
// An invalid function name wraps [ErrInvalid]; a stack without a log stream wraps
// [jetstream.ErrStreamNotFound].
func (r *Reader) Follow(ctx context.Context, function string, each func(Record) error) error {
	if err := checkFunction(function); err != nil {
		return err
	}
	cons, err := r.js.OrderedConsumer(ctx, r.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{Subject(r.stack, function)},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		// The server deletes the consumer this long after a reader vanished without deleting it.
		InactiveThreshold: consumerIdle,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("logstream: following %s: %w", function, err)
	}
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			_ = r.js.DeleteConsumer(dctx, r.stream, info.Name) // best effort, as in Recent
		}
	}()
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("logstream: following %s: %w", function, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("logstream: following %s: %w", function, err)
		}
		var rec Record
		if md, err := msg.Metadata(); err == nil {
			rec.Seq = md.Sequence.Stream
		}
		if json.Unmarshal(msg.Data(), &rec) != nil {
			continue
		}
		if err := each(rec); err != nil {
			return err
		}
	}
}
