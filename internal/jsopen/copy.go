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

// ErrStreamNotEmpty reports a stream that CopyStreams would copy into, which already has messages.
var ErrStreamNotEmpty = errors.New("the stream exists with messages")

// CopyStreams copies every stream of from that keep accepts into to: its configuration (through to,
// so a Replicated JetStream gives it the cluster's replicas) and its messages in order, with their
// subjects and headers. Key-Value buckets and Object Stores are streams and copy the same way; their
// revisions are renumbered from 1 in the copy, their order kept. A stream that exists in to with
// messages is not touched and fails the copy with ErrStreamNotEmpty: CopyStreams never merges. It
// returns the names copied and the messages copied in all.
//
// This is how a single-node store moves into a cluster (docs/cluster.md): nats-server cannot take a
// single-node store into clustered JetStream in place.
func CopyStreams(ctx context.Context, from, to jetstream.JetStream, keep func(name string) bool) (copied []string, messages uint64, err error) {
	names := from.StreamNames(ctx)
	var all []string
	for name := range names.Name() {
		if keep(name) {
			all = append(all, name)
		}
	}
	if err := names.Err(); err != nil {
		return nil, 0, fmt.Errorf("listing streams: %w", err)
	}
	for _, name := range all {
		n, err := copyStream(ctx, from, to, name)
		messages += n
		if err != nil {
			return copied, messages, fmt.Errorf("copying stream %s: %w", name, err)
		}
		copied = append(copied, name)
	}
	return copied, messages, nil
}

func copyStream(ctx context.Context, from, to jetstream.JetStream, name string) (uint64, error) {
	src, err := from.Stream(ctx, name)
	if err != nil {
		return 0, err
	}
	info, err := src.Info(ctx)
	if err != nil {
		return 0, err
	}
	cfg := info.Config
	cfg.Replicas = 0 // the destination's to decide
	dst, err := to.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if dst, err = to.CreateStream(ctx, cfg); err != nil {
			return 0, err
		}
	case err != nil:
		return 0, err
	}
	dinfo, err := dst.Info(ctx)
	if err != nil {
		return 0, err
	}
	if dinfo.State.Msgs > 0 {
		return 0, fmt.Errorf("%w (%d messages)", ErrStreamNotEmpty, dinfo.State.Msgs)
	}
	if info.State.Msgs == 0 {
		return 0, nil
	}
	cons, err := src.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, err
	}
	var n uint64
	for n < info.State.Msgs {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return n, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			out := &nats.Msg{Subject: m.Subject(), Header: nats.Header{}, Data: m.Data()}
			for k, v := range m.Headers() {
				// The conditions a message was published with (a key-value update's expected
				// revision) held in the source's numbering, not the copy's.
				if !strings.HasPrefix(k, "Nats-Expected-") {
					out.Header[k] = v
				}
			}
			if _, err := to.PublishMsg(ctx, out); err != nil {
				return n, err
			}
			n++
			meta, err := m.Metadata()
			if err == nil && meta.Sequence.Stream >= info.State.LastSeq {
				return n, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return n, err
		}
		if got == 0 {
			return n, nil // nothing more to read: messages expired meanwhile
		}
	}
	return n, nil
}
