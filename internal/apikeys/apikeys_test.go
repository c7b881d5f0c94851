package apikeys

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix/jstest"
)

func run(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-s.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("keys not loaded")
	}
}

func TestKeysAcrossNodes(t *testing.T) {
	ns := jstest.Start(t, "")
	_, js1 := jstest.Connect(t, ns)
	_, js2 := jstest.Connect(t, ns)
	ctx := t.Context()
	a, err := Open(ctx, js1, Config{Stack: "t"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, js2, Config{Stack: "t"})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	run(t, b)
	secret, k, err := a.Create(ctx, "partner", "basic")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, keyPrefix) || len(secret) < 20 || len(secret) > 128 || k.SHA256 == "" || strings.Contains(k.SHA256, secret) {
		t.Fatalf("key %q, record %+v", secret, k)
	}
	if _, _, err := b.Create(ctx, "partner", "basic"); err != ErrExists {
		t.Fatalf("second key of the same name: %v", err)
	}
	if _, _, err := a.Create(ctx, "bad name", "basic"); err == nil {
		t.Fatal("a bad name was accepted")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, ok := b.Lookup(secret); ok && got.Name == "partner" && got.Plan == "basic" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other node never saw the key")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := b.Lookup(secret + "x"); ok {
		t.Fatal("a wrong key was found")
	}
	if list, _ := a.List(ctx); len(list) != 1 || list[0].Name != "partner" {
		t.Fatalf("list %+v", list)
	}
	if err := b.Delete(ctx, "partner"); err != nil {
		t.Fatal(err)
	}
	for {
		if _, ok := a.Lookup(secret); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a deleted key still works")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.Delete(ctx, "partner"); err != ErrNotFound {
		t.Fatalf("deleting twice: %v", err)
	}
}

func TestQuotaIsSharedAndSurvivesRestarts(t *testing.T) {
	ns := jstest.Start(t, "")
	_, js1 := jstest.Connect(t, ns)
	_, js2 := jstest.Connect(t, ns)
	ctx := t.Context()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a, _ := Open(ctx, js1, Config{Stack: "t", Now: clock, FlushInterval: time.Hour})
	b, _ := Open(ctx, js2, Config{Stack: "t", Now: clock, FlushInterval: time.Hour})
	k := Key{SHA256: strings.Repeat("ab", 32)}
	q := Quota{Limit: 10, Period: PeriodDay}
	admit := func(s *Store, n int) int {
		got := 0
		for range n {
			ok, err := s.Consume(ctx, k, q)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				got++
			}
		}
		return got
	}
	// Concurrent requests on one node never exceed the quota.
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); n := admit(a, 3); mu.Lock(); total += n; mu.Unlock() }()
	}
	wg.Wait()
	if total != 10 {
		t.Fatalf("one node admitted %d of 24, want exactly 10", total)
	}
	// Before a flush the other node does not know; after it, it does.
	a.flush(ctx)
	if got := admit(b, 5); got != 0 {
		t.Fatalf("the other node admitted %d after the quota was shared as used up", got)
	}
	// The next day is a new period.
	now = now.Add(24 * time.Hour)
	if got := admit(a, 4); got != 4 {
		t.Fatalf("new day: %d admitted", got)
	}
	a.flush(ctx)
	// A restarted node reads the shared count.
	c, _ := Open(ctx, js2, Config{Stack: "t", Now: clock})
	if got := admit(c, 10); got != 6 {
		t.Fatalf("after a restart: %d admitted, want the 6 left", got)
	}
	// Weeks start on Monday, months on the 1st, in UTC.
	if got := periodStart(PeriodWeek, time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC)); !got.Equal(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("week start %v", got)
	}
	if got := periodStart(PeriodMonth, time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC)); !got.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("month start %v", got)
	}
}
