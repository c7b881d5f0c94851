// Package jsopen opens JetStream Key-Value buckets and streams, creating them the first time: the one
// place every store of a stack binds to its storage.
package jsopen

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// KeyValue binds to the Key-Value bucket cfg names, creating it with cfg when it does not exist.
// An existing bucket keeps its configuration. Two nodes that open a new bucket at once both succeed.
func KeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// Stream binds to the stream cfg names, creating it with cfg when it does not exist. An existing
// stream keeps its configuration.
func Stream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, cfg.Name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// ObjectStore binds to the Object Store cfg names, creating it with cfg when it does not exist. An
// existing store keeps its configuration.
func ObjectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	obs, err := js.ObjectStore(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			obs, err = js.ObjectStore(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opening object store %s: %w", cfg.Bucket, err)
	}
	return obs, nil
}
