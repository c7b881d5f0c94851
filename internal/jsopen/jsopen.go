// Package jsopen opens JetStream Key-Value buckets and streams, creating them the first time: the one
// place every store of a stack binds to its storage.
package jsopen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// openWait bounds how long opening a bucket or stream retries what a forming cluster refuses for a
// moment: JetStream not yet available (no quorum, no meta leader), no answer, or a stream that
// another node is creating at that instant and that is found neither existing nor missing.
const openWait = 30 * time.Second

// opening calls open until it succeeds or fails for a reason waiting does not change, for at most
// openWait.
func opening[T any](ctx context.Context, open func() (T, error)) (T, error) {
	return retry(ctx, openWait, open, racing)
}

// Retry calls call again while it fails with a Transient error or one of also's, with growing,
// jittered pauses (50 ms doubling to 1 s), until bound has passed or ctx ends; it returns the last
// error. What a node does while it starts with a cluster that is forming goes through it.
func Retry(ctx context.Context, bound time.Duration, call func() error, also ...func(error) bool) error {
	_, err := retry(ctx, bound, func() (struct{}, error) { return struct{}{}, call() }, also...)
	return err
}

func retry[T any](ctx context.Context, bound time.Duration, call func() (T, error), also ...func(error) bool) (T, error) {
	deadline := time.Now().Add(bound)
	pause := 50 * time.Millisecond
	for {
		v, err := call()
		again := err != nil && transient(err)
		for _, f := range also {
			again = again || err != nil && f(err)
		}
		if !again || time.Now().After(deadline) || ctx.Err() != nil {
			return v, err
		}
		t := time.NewTimer(pause + rand.N(pause))
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
		pause = min(2*pause, time.Second)
	}
}

// racing reports the error of a stream being created by another node at that moment: "stream not
// found" where the bucket was just reported to exist.
func racing(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == 10059
}

// KeyValue binds to the Key-Value bucket cfg names, creating it with cfg when it does not exist.
// An existing bucket keeps its configuration. Two nodes that open a new bucket at once both succeed.
func KeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := opening(ctx, func() (jetstream.KeyValue, error) { return keyValue(ctx, js, cfg) })
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

func keyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	return kv, err
}

// Stream binds to the stream cfg names, creating it with cfg when it does not exist. An existing
// stream keeps its configuration.
func Stream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := opening(ctx, func() (jetstream.Stream, error) { return stream(ctx, js, cfg) })
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

func stream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, cfg.Name)
		}
	}
	return s, err
}

// ObjectStore binds to the Object Store cfg names, creating it with cfg when it does not exist. An
// existing store keeps its configuration.
func ObjectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	obs, err := opening(ctx, func() (jetstream.ObjectStore, error) { return objectStore(ctx, js, cfg) })
	if err != nil {
		return nil, fmt.Errorf("opening object store %s: %w", cfg.Bucket, err)
	}
	return obs, nil
}

func objectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	obs, err := js.ObjectStore(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			obs, err = js.ObjectStore(ctx, cfg.Bucket)
		}
	}
	return obs, err
}
