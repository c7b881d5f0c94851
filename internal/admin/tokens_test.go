package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func openTokens(t *testing.T) *Tokens {
	t.Helper()
	js := newJetStream(t)
	tokens, err := OpenTokens(context.Background(), js, "t")
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	tokens := openTokens(t)
	if empty, err := tokens.Empty(ctx); err != nil || !empty {
		t.Fatalf("new store: empty %v, %v", empty, err)
	}
	token, err := tokens.Create(ctx, "deployer")
	if err != nil {
		t.Fatal(err)
	}
	if name, err := tokens.Verify(ctx, token); err != nil || name != "deployer" {
		t.Fatalf("Verify(new token) = %q, %v", name, err)
	}
	secret := token[strings.LastIndexByte(token, '.')+1:]
	for _, bad := range []string{
		"", "gh", "gh.deployer", "gh.deployer." + secret + "x", "gh.other." + secret, "xx.deployer." + secret,
		"gh.deployer." + secret + ".extra", "gh.DEPLOYER." + secret, strings.Replace(token, secret[:4], "AAAA", 1),
	} {
		if _, err := tokens.Verify(ctx, bad); !errors.Is(err, ErrTokenNotFound) {
			t.Errorf("Verify(%q): %v, want ErrTokenNotFound", bad, err)
		}
	}
	if _, err := tokens.Create(ctx, "deployer"); !errors.Is(err, ErrTokenExists) {
		t.Fatalf("second create: %v", err)
	}
	for _, name := range []string{"", "Upper", "with space", "dots.not.allowed", strings.Repeat("a", 65)} {
		if _, err := tokens.Create(ctx, name); !errors.Is(err, ErrTokenName) {
			t.Errorf("Create(%q): %v", name, err)
		}
	}
	list, err := tokens.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "deployer" || list[0].CreatedAt.IsZero() {
		t.Fatalf("List: %+v, %v", list, err)
	}
	// The store keeps only a hash: the token itself appears nowhere in it.
	entry, err := tokens.kv.Get(ctx, "deployer")
	if err != nil || strings.Contains(string(entry.Value()), secret) {
		t.Fatalf("stored record %s (%v)", entry.Value(), err)
	}
	if err := tokens.Delete(ctx, "deployer"); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Verify(ctx, token); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("a deleted token: %v, want ErrTokenNotFound", err)
	}
	if err := tokens.Delete(ctx, "deployer"); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// flakyKV is a token bucket whose reads fail as a stream between leaders does, the first fails
// times (all of them when fails is negative).
type flakyKV struct {
	jetstream.KeyValue
	fails atomic.Int32
}

func (f *flakyKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if f.fails.Load() != 0 {
		f.fails.Add(-1)
		return nil, nats.ErrNoResponders
	}
	return f.KeyValue.Get(ctx, key)
}

// TestTokensStoreUnavailable: a token read while the bucket does not answer for a moment (a stream
// between leaders) is tried again and the token verifies; while it answers nothing, a token in the
// watch's view verifies, and one that is not (never seen, or deleted through another node, which
// the watch hears of) is ErrStoreUnavailable, which the admin API answers with 503, never with the
// 401 of a wrong token.
func TestTokensStoreUnavailable(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js := newJetStream(t)
	tokens, err := OpenTokens(ctx, js, "t")
	if err != nil {
		t.Fatal(err)
	}
	other, err := OpenTokens(ctx, js, "t") // another node's store of the same stack
	if err != nil {
		t.Fatal(err)
	}
	token, err := tokens.Create(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	later, err := other.Create(ctx, "later")
	if err != nil {
		t.Fatal(err)
	}
	flaky := &flakyKV{KeyValue: tokens.kv}
	tokens.kv = flaky
	flaky.fails.Store(3)
	if name, err := tokens.Verify(ctx, token); err != nil || name != "ops" {
		t.Fatalf("Verify while the bucket missed 3 reads = %q, %v; want the token", name, err)
	}
	if n := flaky.fails.Load(); n != 0 {
		t.Fatalf("%d failing reads left: the retries were not made", n)
	}

	// Without the view (Run not started), a bucket that answers nothing within the wait is
	// ErrStoreUnavailable.
	flaky.fails.Store(-1)
	tokens.wait = 300 * time.Millisecond
	if _, err := tokens.Verify(ctx, token); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("Verify while the bucket answers nothing, no view: %v, want ErrStoreUnavailable", err)
	}

	// With the view, both tokens verify while the bucket answers nothing.
	flaky.fails.Store(0)
	go tokens.Run(ctx)
	hashOf := func(token string) string { return hashToken(token) }
	waitView := func(what string, ok func() bool) {
		t.Helper()
		for start := time.Now(); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("the view never %s", what)
			}
		}
	}
	waitView("held both tokens", func() bool { return tokens.inView("ops", hashOf(token)) && tokens.inView("later", hashOf(later)) })
	flaky.fails.Store(-1)
	for tok, name := range map[string]string{token: "ops", later: "later"} {
		if got, err := tokens.Verify(ctx, tok); err != nil || got != name {
			t.Fatalf("Verify of %s while the bucket answers nothing, from the view = %q, %v", name, got, err)
		}
	}
	if _, err := tokens.Verify(ctx, strings.Replace(token, "gh.ops.", "gh.ops.A", 1)); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("a wrong token while the bucket answers nothing: %v, want ErrStoreUnavailable (the view only accepts)", err)
	}

	// A token deleted through another node leaves the view, and is no longer accepted from it.
	flaky.fails.Store(0)
	if err := other.Delete(ctx, "later"); err != nil {
		t.Fatal(err)
	}
	waitView("dropped the deleted token", func() bool { return !tokens.inView("later", hashOf(later)) })
	flaky.fails.Store(-1)
	if _, err := tokens.Verify(ctx, later); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("a token deleted elsewhere, while the bucket answers nothing: %v, want ErrStoreUnavailable", err)
	}
	s, err := NewServer(Config{Tokens: tokens, Health: func() (int, any) { return 200, nil }})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/admin/v1/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+later)
	resp, err := s.app.Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("a token the store cannot check: %d, Retry-After %q; want 503, 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
