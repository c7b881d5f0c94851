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
}

// storeWait is how long a token's read goes on trying while the bucket does not answer: in a
// cluster, while a stream's replicas grow as nodes join, its group may be between leaders for a
// moment, and a valid token refused then would tell its holder it is wrong.
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
		rec, err := t.get(ctx, name)
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, adminapi.TokenView{Name: rec.Name, CreatedAt: rec.CreatedAt})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes a token; it stops working at once.
func (t *Tokens) Delete(ctx context.Context, name string) error {
	if _, err := t.get(ctx, name); err != nil {
		return err
	}
	if err := t.kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("admin: deleting token: %w", err)
	}
	return nil
}

// Verify returns the name of the token, when it is one; ErrTokenNotFound when it is not, and
// ErrStoreUnavailable when the store did not answer (a valid token must not look refused then).
func (t *Tokens) Verify(ctx context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != "gh" || !tokenName.MatchString(parts[1]) {
		return "", ErrTokenNotFound
	}
	rec, err := t.get(ctx, parts[1])
	switch {
	case errors.Is(err, ErrTokenNotFound):
		return "", ErrTokenNotFound
	case err != nil:
		return "", fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	if subtle.ConstantTimeCompare([]byte(rec.SHA256), []byte(hashToken(token))) != 1 {
		return "", ErrTokenNotFound
	}
	return rec.Name, nil
}

// Empty reports whether no token exists yet.
func (t *Tokens) Empty(ctx context.Context) (bool, error) {
	list, err := t.List(ctx)
	return len(list) == 0, err
}

// get reads name's record, trying again for up to t.wait while the bucket does not answer.
func (t *Tokens) get(ctx context.Context, name string) (tokenRecord, error) {
	var rec tokenRecord
	e, err := t.kv.Get(ctx, name)
	for deadline := time.Now().Add(t.wait); err != nil && jsopen.Transient(err) && time.Now().Before(deadline); {
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
