// Package admin is Gatehouse's control plane over HTTP: the API on the admin listener and the bearer
// tokens that guard it. Tokens have names, are stored hashed in a JetStream key-value bucket (so
// every node of a stack accepts the same ones), and are shown once, when created.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/jsopen"
)

// Sentinel errors.
var (
	ErrTokenExists   = errors.New("a token with this name exists")
	ErrTokenNotFound = errors.New("no token with this name")
	ErrTokenName     = errors.New("token names are 1 to 64 lower-case letters, digits, '-' and '_'")
)

var tokenName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// tokenRecord is what the bucket holds for a token: never the token itself.
type tokenRecord struct {
	SchemaVersion int       `json:"schemaVersion"`
	Name          string    `json:"name"`
	SHA256        string    `json:"sha256"`
	CreatedAt     time.Time `json:"createdAt"`
}

// Tokens is the token store of one stack.
type Tokens struct {
	kv jetstream.KeyValue
	// wait bounds how long a read goes on trying while the bucket does not answer (storeWait).
	wait time.Duration

	mu sync.Mutex
	// view is what Run's watch last heard the bucket hold, each token's name to its SHA-256; nil
	// until the watch has delivered the bucket's contents. Verify falls back on it only while the
	// bucket does not answer.
	view map[string]string
}

// storeWait is how long a token's read goes on trying while the bucket does not answer and the
// token is not in the view: in a cluster, while a stream's replicas grow as nodes join, its group
// may be between leaders for several seconds, and a valid token refused then would tell its holder
// it is wrong.
const storeWait = 3 * time.Second

// ErrStoreUnavailable means the token store did not answer: a token could not be checked.
var ErrStoreUnavailable = errors.New("admin: the token store is not available")

// OpenTokens opens (creating if needed) the token bucket of stack.
func OpenTokens(ctx context.Context, js jetstream.JetStream, stack string) (*Tokens, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      "gh_" + stack + "_tokens",
		Description: "Gatehouse admin tokens (hashed)",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("admin: opening the token bucket: %w", err)
	}
	return &Tokens{kv: kv, wait: storeWait}, nil
}

// Create makes a token named name and returns it; it is not stored and cannot be shown again.
// Tokens look like "gh.NAME.SECRET".
func (t *Tokens) Create(ctx context.Context, name string) (string, error) {
	if !tokenName.MatchString(name) {
		return "", ErrTokenName
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := "gh." + name + "." + base64.RawURLEncoding.EncodeToString(b)
	rec, _ := json.Marshal(tokenRecord{SchemaVersion: 1, Name: name, SHA256: hashToken(token), CreatedAt: time.Now().UTC()})
	if _, err := t.kv.Create(ctx, name, rec); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return "", ErrTokenExists
		}
		return "", fmt.Errorf("admin: storing token: %w", err)
	}
	return token, nil
}

// List returns every token's name and creation time, sorted by name.
func (t *Tokens) List(ctx context.Context) ([]adminapi.TokenView, error) {
	lister, err := t.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("admin: listing tokens: %w", err)
	}
	var out []adminapi.TokenView
	for name := range lister.Keys() {
		rec, err := t.get(ctx, name, nil)
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, adminapi.TokenView{Name: rec.Name, CreatedAt: rec.CreatedAt})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes a token; it stops working at once on this node, and on the others as soon as their
// watch hears of it (Run), within milliseconds.
func (t *Tokens) Delete(ctx context.Context, name string) error {
	if _, err := t.get(ctx, name, nil); err != nil {
		return err
	}
	if err := t.kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("admin: deleting token: %w", err)
	}
	t.mu.Lock()
	delete(t.view, name)
	t.mu.Unlock()
	return nil
}

// Verify returns the name of the token, when it is one; ErrTokenNotFound when it is not, and
// ErrStoreUnavailable when the store did not answer (a valid token must not look refused then).
//
// The bucket is read on every call, so that a deleted token stops working at once. While it does not
// answer (a stream between leaders), a token that the watch's view holds is accepted: the view
// lags the bucket by the watch's delivery, milliseconds, and a token deleted meanwhile is one that
// the bucket answered for a moment before.
func (t *Tokens) Verify(ctx context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != "gh" || !tokenName.MatchString(parts[1]) {
		return "", ErrTokenNotFound
	}
	name, hash := parts[1], hashToken(token)
	rec, err := t.get(ctx, name, func() bool { return t.inView(name, hash) })
	switch {
	case errors.Is(err, errFromView):
		return name, nil
	case errors.Is(err, ErrTokenNotFound):
		return "", ErrTokenNotFound
	case err != nil:
		return "", fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	if subtle.ConstantTimeCompare([]byte(rec.SHA256), []byte(hash)) != 1 {
		return "", ErrTokenNotFound
	}
	return rec.Name, nil
}

// errFromView is get's answer when the bucket did not answer and inView accepted instead.
var errFromView = errors.New("admin: accepted from the view")

// inView reports whether the watch's view holds name with the SHA-256 hash.
func (t *Tokens) inView(name, hash string) bool {
	t.mu.Lock()
	stored, ok := t.view[name]
	t.mu.Unlock()
	return ok && subtle.ConstantTimeCompare([]byte(stored), []byte(hash)) == 1
}

// Empty reports whether no token exists yet.
func (t *Tokens) Empty(ctx context.Context) (bool, error) {
	list, err := t.List(ctx)
	return len(list) == 0, err
}

// get reads name's record, trying again for up to t.wait while the bucket does not answer. Each
// time it does not, inView (when set) may accept instead: get then returns errFromView.
func (t *Tokens) get(ctx context.Context, name string, inView func() bool) (tokenRecord, error) {
	var rec tokenRecord
	e, err := t.kv.Get(ctx, name)
	for deadline := time.Now().Add(t.wait); err != nil && jsopen.Transient(err); {
		if inView != nil && inView() {
			return rec, errFromView
		}
		if !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return rec, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		e, err = t.kv.Get(ctx, name)
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return rec, ErrTokenNotFound
		}
		return rec, fmt.Errorf("admin: reading token: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return rec, fmt.Errorf("admin: token record %s: %w", name, err)
	}
	return rec, nil
}

// Run keeps the view of the bucket that Verify falls back on while the bucket does not answer, until
// ctx ends. A watch that fails or stops is started again after a second; the last view stays
// meanwhile.
func (t *Tokens) Run(ctx context.Context) {
	for ctx.Err() == nil {
		t.watch(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// watch follows the bucket until ctx ends or the watch stops: the bucket's contents first, which
// replace the view when complete, then each change.
func (t *Tokens) watch(ctx context.Context) {
	w, err := t.kv.WatchAll(ctx)
	if err != nil {
		return
	}
	defer w.Stop()
	fresh := map[string]string{}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			t.mu.Lock()
			switch {
			case e == nil:
				// The contents are complete: from now on changes go to the view itself.
				if fresh != nil {
					t.view, fresh = fresh, nil
				}
			case fresh != nil:
				applyToken(fresh, e)
			default:
				applyToken(t.view, e)
			}
			t.mu.Unlock()
		}
	}
}

// applyToken applies a watched entry of the bucket to view.
func applyToken(view map[string]string, e jetstream.KeyValueEntry) {
	var rec tokenRecord
	if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &rec) != nil || rec.SHA256 == "" {
		delete(view, e.Key())
		return
	}
	view[e.Key()] = rec.SHA256
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Import stores token, made elsewhere (by `gatehouse cluster token` for every node of a cluster), as
// the token of its name, unless that name already has a token: then it reports whether the stored one
// is token. Several nodes may import the same token at once.
func (t *Tokens) Import(ctx context.Context, token string) (bool, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != "gh" || !tokenName.MatchString(parts[1]) || len(parts[2]) < 32 {
		return false, errors.New("admin: not a Gatehouse admin token")
	}
	rec, _ := json.Marshal(tokenRecord{SchemaVersion: 1, Name: parts[1], SHA256: hashToken(token), CreatedAt: time.Now().UTC()})
	if _, err := t.kv.Create(ctx, parts[1], rec); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return false, fmt.Errorf("admin: storing token: %w", err)
	}
	switch _, err := t.Verify(ctx, token); {
	case errors.Is(err, ErrTokenNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
