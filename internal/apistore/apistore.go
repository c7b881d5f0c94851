// Package apistore keeps a stack's API definitions (APIs, stages, routes) as versioned records in a
// JetStream Key-Value bucket, so that every gateway of the stack serves the same routes and swaps them
// at once when they change. The definitions themselves are opaque JSON here: the wiring encodes them.
package apistore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SchemaVersion is the schemaVersion of the records this package writes, and the only one it reads.
const SchemaVersion = 1

// History is how many revisions of the definitions the bucket keeps.
const History = 10

// key is the one record of the bucket: the stack's definitions, replaced as a whole.
const key = "apis"

// ErrUnreadable means a stored revision does not decode, or has another schema version.
var ErrUnreadable = errors.New("unreadable API definitions")

// Bucket returns the name of the stack's bucket.
func Bucket(stack string) string { return "gh_" + stack + "_apis" }

// Definitions is one revision of a stack's API definitions.
type Definitions struct {
	SchemaVersion int `json:"schemaVersion"`
	// Source says where they came from, such as the stack file's name.
	Source    string    `json:"source"`
	UpdatedAt time.Time `json:"updatedAt"`
	// APIs is the definitions, as the wiring encodes them.
	APIs json.RawMessage `json:"apis"`
	// Revision is the record's revision in the bucket; it is not stored.
	Revision uint64 `json:"-"`
}

// Store is the API definitions of one stack.
type Store struct {
	kv jetstream.KeyValue
}

// Open binds to the stack's bucket, creating it when it does not exist.
func Open(ctx context.Context, js jetstream.JetStream, stack string) (*Store, error) {
	kv, err := js.KeyValue(ctx, Bucket(stack))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      Bucket(stack),
			Description: "Gatehouse API definitions of stack " + stack,
			History:     History,
			Storage:     jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, Bucket(stack))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("apistore: opening bucket %s: %w", Bucket(stack), err)
	}
	return &Store{kv: kv}, nil
}

// Put stores apis as the stack's definitions unless they are the ones stored already, and returns
// the current revision and whether it wrote one. apis must be valid JSON.
func (s *Store) Put(ctx context.Context, source string, apis json.RawMessage, now time.Time) (uint64, bool, error) {
	if !json.Valid(apis) {
		return 0, false, errors.New("apistore: the definitions are not valid JSON")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, apis); err != nil {
		return 0, false, err
	}
	cur, err := s.Get(ctx)
	switch {
	case err == nil && bytes.Equal(cur.APIs, compact.Bytes()):
		return cur.Revision, false, nil
	case err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, ErrUnreadable):
		return 0, false, err
	}
	b, err := json.Marshal(Definitions{SchemaVersion: SchemaVersion, Source: source, UpdatedAt: now.UTC().Truncate(time.Millisecond), APIs: compact.Bytes()})
	if err != nil {
		return 0, false, err
	}
	rev, err := s.kv.Put(ctx, key, b)
	if err != nil {
		return 0, false, fmt.Errorf("apistore: storing the definitions: %w", err)
	}
	return rev, true, nil
}

// Get returns the current definitions; the error wraps jetstream.ErrKeyNotFound when there are none.
func (s *Store) Get(ctx context.Context) (Definitions, error) {
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		return Definitions{}, fmt.Errorf("apistore: reading the definitions: %w", err)
	}
	return decode(e)
}

func decode(e jetstream.KeyValueEntry) (Definitions, error) {
	var d Definitions
	if err := json.Unmarshal(e.Value(), &d); err != nil {
		return Definitions{}, fmt.Errorf("apistore: revision %d: %w: %w", e.Revision(), ErrUnreadable, err)
	}
	if d.SchemaVersion != SchemaVersion {
		return Definitions{}, fmt.Errorf("apistore: revision %d has schema version %d, want %d: %w", e.Revision(), d.SchemaVersion, SchemaVersion, ErrUnreadable)
	}
	d.Revision = e.Revision()
	return d, nil
}

// Watch calls each with the current definitions (when there are any) and then with every new
// revision, in order, until ctx is done (it returns nil) or the watch stops. A revision that cannot be
// read is passed to bad and skipped.
func (s *Store) Watch(ctx context.Context, each func(Definitions), bad func(error)) error {
	w, err := s.kv.Watch(ctx, key)
	if err != nil {
		return fmt.Errorf("apistore: watching: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("apistore: the watch stopped")
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			d, err := decode(e)
			if err != nil {
				bad(err)
				continue
			}
			each(d)
		}
	}
}
