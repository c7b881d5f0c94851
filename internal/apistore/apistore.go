// Package apistore keeps a stack's API definitions in a JetStream Key-Value bucket, one record per
// API, so that every gateway of the stack serves the same APIs and sees a change within moments
// (through a watch). Each record holds a [spec.API] with who manages it and the hash of what was
// applied; a change is one record written with compare-and-set, so a definition is replaced whole
// or not at all, and two writers cannot silently overwrite each other.
package apistore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/jsopen"
	"gatehouse.dev/gatehouse/internal/spec"
)

// SchemaVersion is the schemaVersion of the records this package writes, and the only one it reads.
// Version 1 was one record ("apis") holding every API; Open migrates it.
const SchemaVersion = 2

// History is how many revisions of each API the bucket keeps.
const History = 10

// keyPrefix starts every API's key: "api.NAME".
const keyPrefix = "api."

// Who manages an API: what wrote it last.
const (
	ManagedByStackFile = "stack-file"
	ManagedByAdmin     = "admin-api"
)

var (
	// ErrUnreadable means a stored record does not decode, or has another schema version.
	ErrUnreadable = errors.New("unreadable API definition")
	// ErrNotFound means the stack has no API of that name.
	ErrNotFound = errors.New("no such API")
	// ErrConflict means the API changed since the revision the writer read.
	ErrConflict = errors.New("the API changed since it was read")
)

// Bucket returns the name of the stack's bucket.
func Bucket(stack string) string { return "gh_" + stack + "_apis" }

// Record is one API of the stack as stored.
type Record struct {
	SchemaVersion int `json:"schemaVersion"`
	// Name is the API's name, unique in the stack; the record's key is derived from it.
	Name string `json:"name"`
	// ID is the API's immutable id: 10 lower-case letters and digits, as API Gateway's, derived
	// from the stack and the name (see ID).
	ID string `json:"id"`
	// ManagedBy says what wrote the API last: ManagedByStackFile or ManagedByAdmin.
	ManagedBy string `json:"managedBy"`
	// Source says more about the writer: the stack file's name, or the admin token's name.
	Source string `json:"source,omitempty"`
	// Hash is the hash of API (see Hash).
	Hash string `json:"hash"`
	// FileHash is the hash of the stack file's definition of the API when the stack file last set it;
	// "" when it never did. A reload compares it with the file to tell its own changes from others'.
	FileHash  string    `json:"fileHash,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
	// API is the definition.
	API spec.API `json:"api"`
	// Revision is the record's revision in the bucket; it is not stored.
	Revision uint64 `json:"-"`
}

// Hash returns the hash that identifies a definition: equal definitions have equal hashes.
func Hash(api spec.API) string {
	b, err := json.Marshal(api)
	if err != nil {
		// Every field of spec.API marshals; a failure here is a programming error.
		panic(fmt.Sprintf("apistore: marshalling an API: %v", err))
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// ID returns the id of the API name of stack: 10 lower-case letters and digits, the same on every
// node and every start.
func ID(stack, name string) string {
	h := sha256.Sum256([]byte("gatehouse api\x00" + stack + "\x00" + name))
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	id := make([]byte, 10)
	for i := range id {
		id[i] = digits[int(h[i])%len(digits)]
	}
	return string(id)
}

// Store is the API definitions of one stack.
type Store struct {
	kv    jetstream.KeyValue
	stack string
}

// Open binds to the stack's bucket, creating it when it does not exist, and migrates a definition
// of schema version 1 when it finds one.
func Open(ctx context.Context, js jetstream.JetStream, stack string) (*Store, error) {
	kv, err := jsopen.KeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      Bucket(stack),
		Description: "Gatehouse API definitions of stack " + stack,
		History:     History,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("apistore: %w", err)
	}
	s := &Store{kv: kv, stack: stack}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func key(name string) string { return keyPrefix + name }

// validKeyName reports whether name can be part of a key: what spec allows as an API name.
func validKeyName(name string) bool {
	return name != "" && !strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	})
}

// Get returns the API named name; the error wraps ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, name string) (Record, error) {
	if !validKeyName(name) {
		return Record{}, fmt.Errorf("apistore: %q: %w", name, ErrNotFound)
	}
	e, err := s.kv.Get(ctx, key(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, fmt.Errorf("apistore: %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("apistore: reading %s: %w", name, err)
	}
	return decode(e)
}

// List returns every API of the stack, by name. Records that cannot be read are passed to bad and
// left out.
func (s *Store) List(ctx context.Context, bad func(error)) ([]Record, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, keyPrefix+">")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("apistore: listing: %w", err)
	}
	var keys []string
	if lister != nil {
		for k := range lister.Keys() {
			keys = append(keys, k)
		}
		_ = lister.Stop()
	}
	slices.Sort(keys)
	recs := make([]Record, 0, len(keys))
	for _, k := range keys {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("apistore: reading %s: %w", k, err)
		}
		r, err := decode(e)
		if err != nil {
			if bad != nil {
				bad(err)
			}
			continue
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// Put stores r as the API r.Name. With revision 0 the API must not exist; otherwise it must still be
// at that revision. Either way a mismatch is ErrConflict. It fills r's schema version and hash and
// returns the new revision.
func (s *Store) Put(ctx context.Context, r Record, revision uint64) (uint64, error) {
	if !validKeyName(r.Name) {
		return 0, fmt.Errorf("apistore: %q is not an API name", r.Name)
	}
	r.SchemaVersion = SchemaVersion
	r.ID = ID(s.stack, r.Name)
	r.Hash = Hash(r.API)
	r.UpdatedAt = r.UpdatedAt.UTC().Truncate(time.Millisecond)
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	var rev uint64
	if revision == 0 {
		rev, err = s.kv.Create(ctx, key(r.Name), b)
		if errors.Is(err, jetstream.ErrKeyExists) {
			err = ErrConflict
		}
	} else {
		rev, err = s.kv.Update(ctx, key(r.Name), b, revision)
		if isWrongSequence(err) {
			err = ErrConflict
		}
	}
	if err != nil {
		return 0, fmt.Errorf("apistore: storing %s: %w", r.Name, err)
	}
	return rev, nil
}

// Delete removes the API named name if it is still at revision (0: whatever its revision).
func (s *Store) Delete(ctx context.Context, name string, revision uint64) error {
	if !validKeyName(name) {
		return fmt.Errorf("apistore: %q: %w", name, ErrNotFound)
	}
	var opts []jetstream.KVDeleteOpt
	if revision != 0 {
		opts = append(opts, jetstream.LastRevision(revision))
	}
	err := s.kv.Delete(ctx, key(name), opts...)
	if isWrongSequence(err) {
		err = ErrConflict
	}
	if err != nil {
		return fmt.Errorf("apistore: deleting %s: %w", name, err)
	}
	return nil
}

// isWrongSequence reports a compare-and-set that found another revision.
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	// A replicated bucket answers a lost compare-and-set with the revision-mismatch code, a single
	// server with the wrong-last-sequence one.
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func decode(e jetstream.KeyValueEntry) (Record, error) {
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, fmt.Errorf("apistore: %s revision %d: %w: %w", e.Key(), e.Revision(), ErrUnreadable, err)
	}
	if r.SchemaVersion != SchemaVersion {
		return Record{}, fmt.Errorf("apistore: %s revision %d has schema version %d, want %d: %w", e.Key(), e.Revision(), r.SchemaVersion, SchemaVersion, ErrUnreadable)
	}
	if want := key(r.Name); want != e.Key() {
		return Record{}, fmt.Errorf("apistore: %s revision %d names the API %q: %w", e.Key(), e.Revision(), r.Name, ErrUnreadable)
	}
	r.API.Name = r.Name
	r.Revision = e.Revision()
	return r, nil
}

// Change is one change of an API, seen by Watch.
type Change struct {
	// Name is the API that changed.
	Name string
	// Record is the API's new definition; nil when it was deleted.
	Record *Record
	// Revision is the bucket revision of the change.
	Revision uint64
}

// Watch calls each with every API's current record and then with every change, in order, until
// ctx is done (it returns nil) or the watch stops; synced runs once, after the current records.
// A record that cannot be read is passed to bad and skipped.
func (s *Store) Watch(ctx context.Context, each func(Change), synced func(), bad func(error)) error {
	w, err := s.kv.Watch(ctx, keyPrefix+">")
	if err != nil {
		return fmt.Errorf("apistore: watching: %w", err)
	}
	defer func() { _ = w.Stop() }()
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
			if e == nil {
				if synced != nil {
					synced()
					synced = nil
				}
				continue
			}
			name := strings.TrimPrefix(e.Key(), keyPrefix)
			if e.Operation() != jetstream.KeyValuePut {
				each(Change{Name: name, Revision: e.Revision()})
				continue
			}
			r, err := decode(e)
			if err != nil {
				bad(err)
				continue
			}
			each(Change{Name: name, Record: &r, Revision: e.Revision()})
		}
	}
}
