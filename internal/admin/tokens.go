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
	kv     jetstream.KeyValue
	js     jetstream.JetStream
	bucket string
}

// OpenTokens opens (creating if needed) the token bucket of stack.
func OpenTokens(ctx context.Context, js jetstream.JetStream, stack string) (*Tokens, error) {
	bucket := "gh_" + stack + "_tokens"
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "Gatehouse admin tokens (hashed)",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("admin: opening the token bucket: %w", err)
	}
	return &Tokens{kv: kv, js: js, bucket: bucket}, nil
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

// Verify returns the name of the token, when it is one.
func (t *Tokens) Verify(ctx context.Context, token string) (string, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != "gh" || !tokenName.MatchString(parts[1]) {
		return "", false
	}
	hash := []byte(hashToken(token))
	rec, err := t.get(ctx, parts[1])
	if err != nil || subtle.ConstantTimeCompare([]byte(rec.SHA256), hash) != 1 {
		// Before refusing, ask the bucket's leader: this node's reads may be served by its own
		// replica, which lags right after the node joined a cluster, when a token made on
		// another node a moment before is not there yet.
		if rec, err = t.leaderGet(ctx, parts[1]); err != nil || subtle.ConstantTimeCompare([]byte(rec.SHA256), hash) != 1 {
			return "", false
		}
	}
	return rec.Name, true
}

// leaderGet reads name's record from the leader of the bucket's stream. The key-value store's reads
// are direct gets, which any replica may answer; this asks the stream's API, which only the leader
// answers. Written here because the key-value API has no such read.
func (t *Tokens) leaderGet(ctx context.Context, name string) (tokenRecord, error) {
	var rec tokenRecord
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + t.bucket + "." + name})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msg, err := t.js.Conn().RequestWithContext(ctx, apiPrefix(t.js.Options())+"STREAM.MSG.GET.KV_"+t.bucket, req)
	if err != nil {
		return rec, fmt.Errorf("admin: reading token from the leader: %w", err)
	}
	var resp struct {
		Message *struct {
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return rec, fmt.Errorf("admin: reading token from the leader: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404:
		return rec, ErrTokenNotFound
	case resp.Error != nil:
		return rec, fmt.Errorf("admin: reading token from the leader: %s", resp.Error.Description)
	case resp.Message == nil || len(resp.Message.Data) == 0:
		// None, or a deletion's marker.
		return rec, ErrTokenNotFound
	}
	if err := json.Unmarshal(resp.Message.Data, &rec); err != nil {
		return rec, fmt.Errorf("admin: token record %s: %w", name, err)
	}
	return rec, nil
}

// Empty reports whether no token exists yet.
func (t *Tokens) Empty(ctx context.Context) (bool, error) {
	list, err := t.List(ctx)
	return len(list) == 0, err
}

func (t *Tokens) get(ctx context.Context, name string) (tokenRecord, error) {
	var rec tokenRecord
	e, err := t.kv.Get(ctx, name)
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

// apiPrefix is the prefix of the JetStream API subjects o addresses, as the jetstream package forms
// it (it keeps its own copy unexported).
func apiPrefix(o jetstream.JetStreamOptions) string {
	switch {
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	}
	return jetstream.DefaultAPIPrefix
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
	_, ok := t.Verify(ctx, token)
	return ok, nil
}
