package admin

import (
	"context"
	"errors"
	"strings"
	"testing"
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
	if name, ok := tokens.Verify(ctx, token); !ok || name != "deployer" {
		t.Fatalf("Verify(new token) = %q, %v", name, ok)
	}
	secret := token[strings.LastIndexByte(token, '.')+1:]
	for _, bad := range []string{
		"", "gh", "gh.deployer", "gh.deployer." + secret + "x", "gh.other." + secret, "xx.deployer." + secret,
		"gh.deployer." + secret + ".extra", "gh.DEPLOYER." + secret, strings.Replace(token, secret[:4], "AAAA", 1),
	} {
		if _, ok := tokens.Verify(ctx, bad); ok {
			t.Errorf("Verify(%q) accepted", bad)
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
	if _, ok := tokens.Verify(ctx, token); ok {
		t.Fatal("a deleted token still verifies")
	}
	if err := tokens.Delete(ctx, "deployer"); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestTokensLeaderRead: the read Verify falls back to before refusing a token (the bucket's leader,
// not this node's replica) finds what the key-value store holds: a token, nothing for an unknown
// name, nothing for a deleted one.
func TestTokensLeaderRead(t *testing.T) {
	ctx := context.Background()
	tokens := openTokens(t)
	token, err := tokens.Create(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	want, err := tokens.get(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tokens.leaderGet(ctx, "ops")
	if err != nil || got != want {
		t.Fatalf("leaderGet(ops) = %+v, %v; the store holds %+v", got, err, want)
	}
	if got.SHA256 != hashToken(token) {
		t.Fatal("the leader's record is not the token's")
	}
	if _, err := tokens.leaderGet(ctx, "nobody"); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("leaderGet(nobody): %v, want ErrTokenNotFound", err)
	}
	if err := tokens.Delete(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.leaderGet(ctx, "ops"); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("leaderGet(deleted) : %v, want ErrTokenNotFound", err)
	}
}
