package jsopen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Replicated returns js with one change: every stream, Key-Value bucket and Object Store created or
// updated through it gets want() replicas when its configuration asks for fewer, and never fewer than
// it already has. When the cluster cannot place that many (servers down, or a server that is not
// clustered), it takes one fewer, down to what the stream has or 1; RaiseReplicas raises it later.
//
// This is how every store of a stack gets replicas in a cluster without each one knowing about
// clusters: the node wraps its JetStream once, and the stores create their buckets as on one machine.
func Replicated(js jetstream.JetStream, want func() int) jetstream.JetStream {
	return &replicated{JetStream: js, want: want}
}

type replicated struct {
	jetstream.JetStream
	want func() int
}

// replicas returns the replicas to ask for a stream named name whose configuration asks for asked,
// and the least acceptable: what the stream has (it is never lowered), or 1.
func (r *replicated) replicas(ctx context.Context, name string, asked int) (want, least int) {
	least = max(1, asked)
	if s, err := r.JetStream.Stream(ctx, name); err == nil {
		least = max(least, s.CachedInfo().Config.Replicas)
	}
	return max(least, r.want()), least
}

// withReplicas calls call with *replicas set to what name should have (see replicas), falling back
// as withFallback does.
func withReplicas[T any](r *replicated, ctx context.Context, name string, replicas *int, call func() (T, error)) (T, error) {
	n, least := r.replicas(ctx, name, *replicas)
	return withFallback(n, least, func(n int) (T, error) {
		*replicas = n
		return call()
	})
}

// withFallback calls try with n replicas, then fewer while the cluster cannot place them. A request
// that timed out is sent again, a few times: while a cluster forms, or while a new stream's group
// elects its leader, JetStream may take longer than a request's timeout to answer.
func withFallback[T any](n, least int, try func(n int) (T, error)) (T, error) {
	timeouts := 0
	for {
		v, err := try(n)
		switch {
		case err == nil:
			return v, nil
		case transient(err):
			if timeouts++; timeouts > maxTimeouts {
				return v, err
			}
			time.Sleep(200 * time.Millisecond)
		case n > least && unplaceable(err):
			n--
		default:
			return v, err
		}
	}
}

// maxTimeouts is how many times a create or update that timed out (or found JetStream not ready)
// is sent again.
const maxTimeouts = 5

// unplaceable reports a JetStream error that means the replicas asked for cannot be placed now.
func unplaceable(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case 10005, // no suitable peers for placement
			10023, // insufficient resources
			10074: // replicas > 1 not supported in non-clustered mode
			return true
		}
	}
	return err != nil && strings.Contains(err.Error(), "insufficient resources")
}

func (r *replicated) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return withReplicas(r, ctx, cfg.Name, &cfg.Replicas, func() (jetstream.Stream, error) { return r.JetStream.CreateStream(ctx, cfg) })
}

func (r *replicated) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return withReplicas(r, ctx, cfg.Name, &cfg.Replicas, func() (jetstream.Stream, error) { return r.JetStream.UpdateStream(ctx, cfg) })
}

func (r *replicated) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return withReplicas(r, ctx, cfg.Name, &cfg.Replicas, func() (jetstream.Stream, error) { return r.JetStream.CreateOrUpdateStream(ctx, cfg) })
}

func (r *replicated) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return r.answering(ctx)(withReplicas(r, ctx, "KV_"+cfg.Bucket, &cfg.Replicas, func() (jetstream.KeyValue, error) { return r.JetStream.CreateKeyValue(ctx, cfg) }))
}

func (r *replicated) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return r.answering(ctx)(withReplicas(r, ctx, "KV_"+cfg.Bucket, &cfg.Replicas, func() (jetstream.KeyValue, error) { return r.JetStream.UpdateKeyValue(ctx, cfg) }))
}

func (r *replicated) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return r.answering(ctx)(withReplicas(r, ctx, "KV_"+cfg.Bucket, &cfg.Replicas, func() (jetstream.KeyValue, error) { return r.JetStream.CreateOrUpdateKeyValue(ctx, cfg) }))
}

func (r *replicated) CreateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return withReplicas(r, ctx, "OBJ_"+cfg.Bucket, &cfg.Replicas, func() (jetstream.ObjectStore, error) { return r.JetStream.CreateObjectStore(ctx, cfg) })
}

func (r *replicated) UpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return withReplicas(r, ctx, "OBJ_"+cfg.Bucket, &cfg.Replicas, func() (jetstream.ObjectStore, error) { return r.JetStream.UpdateObjectStore(ctx, cfg) })
}

func (r *replicated) CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return withReplicas(r, ctx, "OBJ_"+cfg.Bucket, &cfg.Replicas, func() (jetstream.ObjectStore, error) { return r.JetStream.CreateOrUpdateObjectStore(ctx, cfg) })
}

func (r *replicated) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	return r.answering(ctx)(retrying(ctx, func() (jetstream.KeyValue, error) { return r.JetStream.KeyValue(ctx, bucket) }))
}

func (r *replicated) ObjectStore(ctx context.Context, bucket string) (jetstream.ObjectStore, error) {
	return retrying(ctx, func() (jetstream.ObjectStore, error) { return r.JetStream.ObjectStore(ctx, bucket) })
}

func (r *replicated) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	return retrying(ctx, func() (jetstream.Stream, error) { return r.JetStream.Stream(ctx, name) })
}

// retrying calls bind again while it times out or finds no one answering, up to answerWait: in a
// cluster that has just started, a stream answers only once its group has elected a leader.
func retrying[T any](ctx context.Context, bind func() (T, error)) (T, error) {
	return retry(ctx, answerWait, bind)
}

// Transient reports an error that may go away once the cluster settles: a timeout, or no one
// answering yet (a stream whose group is electing a leader, JetStream not ready).
func Transient(err error) bool { return transient(err) }

func transient(err error) bool {
	var api *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.As(err, &api) && api.ErrorCode == 10008 // JetStream system temporarily unavailable
}

// answering makes a bucket's reads go to its stream's leader, then waits, up to answerWait, until
// it answers one.
//
// Leader reads: a Key-Value bucket is made with direct gets allowed, which any replica answers,
// and a replica that has not yet applied the latest write answers with the value before it. Every
// compare-and-set of the stores (a publish that lost a race reads the winner's record, then
// retries) needs to read what the write that beat it wrote, so in a cluster the buckets' reads go
// to the leader, as the bucket's writes do.
//
// Answering: a bucket just created (here or by another node) may have no one answering reads for
// a moment, and the first would fail with "no responders".
func (r *replicated) answering(ctx context.Context) func(jetstream.KeyValue, error) (jetstream.KeyValue, error) {
	return func(kv jetstream.KeyValue, err error) (jetstream.KeyValue, error) {
		if err != nil {
			return kv, err
		}
		if kv, err = r.leaderReads(ctx, kv); err != nil {
			return nil, err
		}
		return waitAnswering(ctx, kv)
	}
}

// leaderReads turns direct gets off for kv's stream, when they are on, and binds kv again (a binding
// decides how it reads when it is made).
//
// Another node opening the bucket with CreateOrUpdateKeyValue turns them on again for a moment (the
// client library asks for them); bindings made before keep reading from the leader, and that node's
// own opening turns them off again.
func (r *replicated) leaderReads(ctx context.Context, kv jetstream.KeyValue) (jetstream.KeyValue, error) {
	name := "KV_" + kv.Bucket()
	s, err := retrying(ctx, func() (jetstream.Stream, error) { return r.JetStream.Stream(ctx, name) })
	if err != nil {
		return nil, err
	}
	if cfg := s.CachedInfo().Config; cfg.AllowDirect {
		cfg.AllowDirect = false
		if _, err := retrying(ctx, func() (jetstream.Stream, error) { return r.JetStream.UpdateStream(ctx, cfg) }); err != nil {
			return nil, fmt.Errorf("reads of bucket %s from its leader: %w", kv.Bucket(), err)
		}
	}
	// Bound again in any case: kv may come from a create or update that saw direct gets on (its
	// own configuration, or another node's meanwhile), and a binding keeps what it saw.
	return retrying(ctx, func() (jetstream.KeyValue, error) { return r.JetStream.KeyValue(ctx, kv.Bucket()) })
}

func waitAnswering(ctx context.Context, kv jetstream.KeyValue) (jetstream.KeyValue, error) {
	deadline := time.Now().Add(answerWait)
	for {
		_, gerr := kv.Get(ctx, "_gatehouse_probe")
		if gerr == nil || errors.Is(gerr, jetstream.ErrKeyNotFound) || errors.Is(gerr, jetstream.ErrKeyDeleted) {
			return kv, nil
		}
		if !transient(gerr) || time.Now().After(deadline) {
			return kv, nil // not ours to decide: the store's own reads will say what is wrong
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// answerWait bounds answering and retrying.
const answerWait = 30 * time.Second

// RaiseReplicas raises the replicas of every stream whose name keep accepts to want, where it has
// fewer, and returns the names of those it raised. A stream the cluster cannot place that many
// replicas of yet keeps what it has (the next call tries again); other errors are returned with the
// names raised before them.
func RaiseReplicas(ctx context.Context, js jetstream.JetStream, keep func(name string) bool, want int) ([]string, error) {
	if r, ok := js.(*replicated); ok {
		js = r.JetStream // RaiseReplicas decides the count itself
	}
	var raised []string
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		if !keep(name) {
			continue
		}
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return raised, err
		}
		cfg := s.CachedInfo().Config
		if cfg.Replicas >= want {
			continue
		}
		cfg.Replicas = want
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			if unplaceable(err) {
				continue
			}
			return raised, err
		}
		raised = append(raised, name)
	}
	return raised, names.Err()
}
