package connections

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestNodeID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // NodeID creates it
	id, err := NodeID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != NodeIDLen || !urlSafe(id) {
		t.Fatalf("node id %q: want %d characters of base64url", id, NodeIDLen)
	}
	fi, err := os.Stat(filepath.Join(dir, "node.id"))
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("node.id has mode %o; want 600", mode)
	}
	for range 3 {
		again, err := NodeID(dir)
		if err != nil {
			t.Fatal(err)
		}
		if again != id {
			t.Fatalf("second call: %q; want the first id %q", again, id)
		}
	}
	if other, err := NodeID(t.TempDir()); err != nil || other == id {
		t.Errorf("another data directory: %q, %v; want a new id", other, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data directory holds %d files; want only node.id (no temporary file left)", len(entries))
	}
}

func TestNodeIDConcurrentFirstUse(t *testing.T) {
	dir := t.TempDir()
	ids := make([]string, 16)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			id, err := NodeID(dir)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent first use gave different ids: %q", ids)
		}
	}
}

func TestNodeIDMalformedFile(t *testing.T) {
	for name, content := range map[string]string{
		"empty":     "",
		"too short": "abc\n",
		"too long":  "abcdefghi\n",
		"bad chars": "abc+/def\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "node.id"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if id, err := NodeID(dir); err == nil {
				t.Fatalf("NodeID = %q; want an error for a malformed node.id", id)
			}
			b, _ := os.ReadFile(filepath.Join(dir, "node.id"))
			if string(b) != content {
				t.Errorf("node.id was rewritten to %q", b)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	node, err := NodeID(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 10_000
	seen := make(map[string]bool, n)
	for range n {
		id := NewID(node)
		if len(id) != IDLen {
			t.Fatalf("id %q has %d characters; want %d", id, len(id), IDLen)
		}
		if !urlSafe(id) {
			t.Fatalf("id %q is not URL-safe", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		got, ok := NodeOf(id)
		if !ok || got != node {
			t.Fatalf("NodeOf(%q) = %q, %v; want %q, true", id, got, ok, node)
		}
	}
}

func TestNewIDPanicsOnBadNode(t *testing.T) {
	for _, node := range []string{"", "n1", "abcdefghi", "abc+/def"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewID(%q) did not panic", node)
				}
			}()
			NewID(node)
		}()
	}
}

func TestNodeOf(t *testing.T) {
	tests := []struct {
		name string
		id   string
		node string
		ok   bool
	}{
		{"well formed", "AbCd-_12" + "0123456789abcdef", "AbCd-_12", true},
		{"empty", "", "", false},
		{"node only", "AbCd-_12", "", false},
		{"one short", "AbCd-_12" + "0123456789abcde", "", false},
		{"one long", "AbCd-_12" + "0123456789abcdefg", "", false},
		{"standard base64", "AbCd+/12" + "0123456789abcdef", "", false},
		{"padding", "AbCd-_12" + "0123456789abcde=", "", false},
		{"slash in random part", "AbCd-_12" + "0123456789abc/ef", "", false},
		{"space", "AbCd-_12" + "0123456789abc ef", "", false},
		{"non-ASCII", "AbCd-_12" + "0123456789abcdé", "", false}, // é is 2 bytes: 24 bytes in all
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node, ok := NodeOf(tt.id)
			if node != tt.node || ok != tt.ok {
				t.Errorf("NodeOf(%q) = %q, %v; want %q, %v", tt.id, node, ok, tt.node, tt.ok)
			}
		})
	}
}

// openStore opens a store in a temporary directory, closed at the end of the test.
func openStore(t testing.TB, flush time.Duration) *Store {
	t.Helper()
	s, err := Open(Config{Dir: filepath.Join(t.TempDir(), "connections"), FlushInterval: flush})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

var (
	testNode = "nodeAAAA"
	t0       = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
)

func record(id, api string, connected time.Time) Record {
	return Record{
		ID:           id,
		API:          api,
		Stage:        "prod",
		ConnectedAt:  connected,
		LastActiveAt: connected,
		SourceIP:     "203.0.113.7",
		UserAgent:    "test-client/1.0",
	}
}

func TestPutGetDelete(t *testing.T) {
	s := openStore(t, time.Hour)
	id := NewID(testNode)
	r := record(id, "chat", t0)
	r.Authorizer = json.RawMessage(`{"principalId":"user-1","role":"admin"}`)
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(got, r) {
		t.Errorf("Get = %+v; want %+v", got, r)
	}

	r.Stage = "dev" // replace
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(id); got.Stage != "dev" {
		t.Errorf("after replace, Stage = %q; want dev", got.Stage)
	}
	if n, err := s.Count(); err != nil || n != 1 {
		t.Errorf("Count = %d, %v; want 1", n, err)
	}

	if err := s.Delete(id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v; want ErrNotFound", err)
	}
	if err := s.Delete(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: %v; want ErrNotFound", err)
	}
	if n, err := s.Count(); err != nil || n != 0 {
		t.Errorf("Count = %d, %v; want 0", n, err)
	}
}

func TestPutInvalid(t *testing.T) {
	s := openStore(t, time.Hour)
	tests := []struct {
		name string
		r    Record
	}{
		{"no id", record("", "chat", t0)},
		{"id too long", record(strings.Repeat("a", maxIDLen+1), "chat", t0)},
		{"authorizer not JSON", func() Record {
			r := record(NewID(testNode), "chat", t0)
			r.Authorizer = json.RawMessage(`{not json`)
			return r
		}()},
		{"too large", func() Record {
			r := record(NewID(testNode), "chat", t0)
			r.UserAgent = strings.Repeat("x", maxRecordBytes)
			return r
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Put(tt.r); !errors.Is(err, ErrInvalid) {
				t.Errorf("Put: %v; want ErrInvalid", err)
			}
		})
	}
	if n, _ := s.Count(); n != 0 {
		t.Errorf("Count = %d after refused puts; want 0", n)
	}
}

func TestList(t *testing.T) {
	s := openStore(t, time.Hour)
	// Connected out of order; two at the same instant, ordered by id.
	recs := []Record{
		record(testNode+"cccccccccccccccc", "chat", t0.Add(2*time.Second)),
		record(testNode+"bbbbbbbbbbbbbbbb", "chat", t0),
		record(testNode+"aaaaaaaaaaaaaaaa", "chat", t0),
		record(testNode+"dddddddddddddddd", "feed", t0.Add(time.Second)),
	}
	for _, r := range recs {
		if err := s.Put(r); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(rs []Record) string {
		var b strings.Builder
		for _, r := range rs {
			b.WriteString(r.ID[NodeIDLen : NodeIDLen+1])
		}
		return b.String()
	}
	tests := []struct {
		api   string
		limit int
		want  string
	}{
		{"", 0, "abdc"},
		{"", 2, "ab"},
		{"", 10, "abdc"},
		{"chat", 0, "abc"},
		{"chat", 1, "a"},
		{"feed", 0, "d"},
		{"none", 0, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q limit %d", tt.api, tt.limit), func(t *testing.T) {
			got, err := s.List(tt.api, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if ids(got) != tt.want {
				t.Errorf("List = %s; want %s", ids(got), tt.want)
			}
		})
	}
	if _, err := s.List("", -1); !errors.Is(err, ErrInvalid) {
		t.Errorf("List with limit -1: %v; want ErrInvalid", err)
	}
}

func TestUnreadableRecord(t *testing.T) {
	s := openStore(t, time.Hour)
	id := NewID(testNode)
	for name, v := range map[string]string{
		"schema version 2":  `{"schemaVersion":2,"id":"` + id + `"}`,
		"no schema version": `{"id":"` + id + `"}`,
		"not JSON":          `{`,
	} {
		t.Run(name, func(t *testing.T) {
			err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key(id), []byte(v)) })
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Get(id)
			if !errors.Is(err, ErrUnreadable) {
				t.Fatalf("Get: %v; want ErrUnreadable", err)
			}
			if name == "schema version 2" && !strings.Contains(err.Error(), "schemaVersion 2; this build reads only 1") {
				t.Errorf("Get: %q does not say which version it found and wants", err)
			}
			if _, err := s.List("", 0); !errors.Is(err, ErrUnreadable) {
				t.Errorf("List: %v; want ErrUnreadable", err)
			}
		})
	}
}

// stored reads the record id straight from Badger, without the activity not yet written.
func storedRecord(t *testing.T, s *Store, id string) Record {
	t.Helper()
	var r Record
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key(id))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			r, err = decode(id, v)
			return err
		})
	})
	if err != nil {
		t.Fatalf("reading %s from Badger: %v", id, err)
	}
	return r
}

func TestTouch(t *testing.T) {
	s := openStore(t, 20*time.Millisecond)
	s.flushMu.Lock() // hold the flush until the unwritten activity has been checked
	id := NewID(testNode)
	if err := s.Put(record(id, "chat", t0)); err != nil {
		t.Fatal(err)
	}
	active := t0.Add(time.Minute)
	s.Touch(id, active)
	s.Touch(id, t0.Add(time.Second)) // earlier: ignored

	if got, err := s.Get(id); err != nil || !got.LastActiveAt.Equal(active) {
		t.Errorf("before the flush, Get: LastActiveAt %v, %v; want %v", got.LastActiveAt, err, active)
	}
	if got, err := s.List("", 0); err != nil || len(got) != 1 || !got[0].LastActiveAt.Equal(active) {
		t.Errorf("before the flush, List: %+v, %v; want LastActiveAt %v", got, err, active)
	}
	if got := storedRecord(t, s, id); !got.LastActiveAt.Equal(t0) {
		t.Errorf("before the flush, Badger holds LastActiveAt %v; want %v (Touch writes nothing)", got.LastActiveAt, t0)
	}
	s.flushMu.Unlock()

	waitFor(t, "the flush", func() bool { return storedRecord(t, s, id).LastActiveAt.Equal(active) })
	if got, err := s.Get(id); err != nil || !got.LastActiveAt.Equal(active) {
		t.Errorf("after the flush, Get: LastActiveAt %v, %v; want %v", got.LastActiveAt, err, active)
	}
	s.mu.Lock()
	left := len(s.touched)
	s.mu.Unlock()
	if left != 0 {
		t.Errorf("%d touches left in memory after the flush; want 0", left)
	}

	// A Put with an older LastActiveAt does not hide activity recorded since.
	later := active.Add(time.Minute)
	s.Touch(id, later)
	if err := s.Put(record(id, "chat", t0)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(id); !got.LastActiveAt.Equal(later) {
		t.Errorf("Get after Put: LastActiveAt %v; want %v", got.LastActiveAt, later)
	}
	waitFor(t, "the second flush", func() bool { return storedRecord(t, s, id).LastActiveAt.Equal(later) })
}

func TestTouchDoesNotBringBackDeleted(t *testing.T) {
	s := openStore(t, time.Hour)
	id := NewID(testNode)
	if err := s.Put(record(id, "chat", t0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(id); err != nil {
		t.Fatal(err)
	}
	s.Touch(id, t0.Add(time.Minute)) // a late message on a socket being closed
	s.Touch(NewID(testNode), t0)     // an id that never had a record
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Count(); n != 0 {
		t.Errorf("Count = %d after flushing touches of absent records; want 0", n)
	}
	s.mu.Lock()
	left := len(s.touched)
	s.mu.Unlock()
	if left != 0 {
		t.Errorf("%d touches of absent records kept in memory; want 0", left)
	}
}

func TestCloseFlushes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "connections")
	s, err := Open(Config{Dir: dir, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	id := NewID(testNode)
	if err := s.Put(record(id, "chat", t0)); err != nil {
		t.Fatal(err)
	}
	active := t0.Add(time.Minute)
	s.Touch(id, active)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v; want nil", err)
	}

	// Open would clear the store: read it with Badger itself.
	db, err := badger.Open(badgerOptions(dir, slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw := &Store{db: db}
	if got := storedRecord(t, raw, id); !got.LastActiveAt.Equal(active) {
		t.Errorf("after Close, Badger holds LastActiveAt %v; want %v", got.LastActiveAt, active)
	}
}

func TestOpenClearsPreviousRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "connections")
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := s.Put(record(NewID(testNode), fmt.Sprint("api", i%3), t0)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.Count(); n != 100 {
		t.Fatalf("Count = %d; want 100", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Count(); err != nil || n != 0 {
		t.Errorf("after reopening, Count = %d, %v; want 0", n, err)
	}
	if recs, err := s.List("", 0); err != nil || len(recs) != 0 {
		t.Errorf("after reopening, List = %d records, %v; want none", len(recs), err)
	}
}

func TestOpenInvalidConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no directory":            {},
		"negative flush interval": {Dir: t.TempDir(), FlushInterval: -time.Second},
	} {
		if s, err := Open(cfg); !errors.Is(err, ErrInvalid) {
			if s != nil {
				s.Close()
			}
			t.Errorf("%s: Open: %v; want ErrInvalid", name, err)
		}
	}
}

func TestOpenLocked(t *testing.T) {
	s := openStore(t, time.Hour)
	if s2, err := Open(Config{Dir: s.db.Opts().Dir}); err == nil {
		s2.Close()
		t.Fatal("a second Open of the same directory succeeded; want Badger's directory lock to refuse it")
	}
}

// TestConcurrent hammers one store from many goroutines; run it with -race.
func TestConcurrent(t *testing.T) {
	s := openStore(t, time.Millisecond) // flush often, to race with the writers
	const (
		workers = 16
		rounds  = 200
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				id := NewID(testNode)
				at := t0.Add(time.Duration(i) * time.Second)
				if err := s.Put(record(id, fmt.Sprint("api", w%4), at)); err != nil {
					t.Error(err)
					return
				}
				s.Touch(id, at.Add(time.Second))
				if _, err := s.Get(id); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if err := s.Delete(id); err != nil {
						t.Error(err)
						return
					}
					s.Touch(id, at.Add(2*time.Second)) // after Delete: must not bring it back
				}
				if i%50 == 0 {
					if _, err := s.List(fmt.Sprint("api", w%4), 10); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	want := workers * rounds / 2
	if n, err := s.Count(); err != nil || n != want {
		t.Errorf("Count = %d, %v; want %d", n, err, want)
	}
	recs, err := s.List("", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if want := r.ConnectedAt.Add(time.Second); !r.LastActiveAt.Equal(want) {
			t.Errorf("%s: LastActiveAt %v; want %v", r.ID, r.LastActiveAt, want)
		}
	}
}

// TestConcurrentDeleteOnce checks that of many Deletes of one record exactly one succeeds.
func TestConcurrentDeleteOnce(t *testing.T) {
	s := openStore(t, time.Hour)
	for range 20 {
		id := NewID(testNode)
		if err := s.Put(record(id, "chat", t0)); err != nil {
			t.Fatal(err)
		}
		var (
			wg sync.WaitGroup
			mu sync.Mutex
			ok int
		)
		for range 8 {
			wg.Go(func() {
				err := s.Delete(id)
				switch {
				case err == nil:
					mu.Lock()
					ok++
					mu.Unlock()
				case !errors.Is(err, ErrNotFound):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok != 1 {
			t.Fatalf("%d Deletes of one record succeeded; want 1", ok)
		}
	}
}

func BenchmarkPut(b *testing.B) {
	s := openStore(b, time.Hour)
	r := benchRecord()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := r
		for pb.Next() {
			r.ID = NewID(testNode)
			if err := s.Put(r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkTouch(b *testing.B) {
	s := openStore(b, DefaultFlushInterval)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = NewID(testNode)
		r := benchRecord()
		r.ID = ids[i]
		if err := s.Put(r); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Touch(ids[i%len(ids)], now.Add(time.Duration(i)))
	}
}

// BenchmarkFlush measures writing the activity of 1,000 connections.
func BenchmarkFlush(b *testing.B) {
	s := openStore(b, time.Hour)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = NewID(testNode)
		r := benchRecord()
		r.ID = ids[i]
		if err := s.Put(r); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now()
	b.ResetTimer()
	for i := range b.N {
		for _, id := range ids {
			s.Touch(id, now.Add(time.Duration(i+1)*time.Second))
		}
		if err := s.flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRecord is a record of a realistic size: about 400 bytes stored, with an authorizer context.
func benchRecord() Record {
	r := record("", "chat", time.Now())
	r.UserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
	r.Authorizer = json.RawMessage(`{"principalId":"user-1234567","scope":"chat:read chat:write","tenant":"acme"}`)
	return r
}

// BenchmarkStoreMemory measures the resident memory of an open store holding 20,000 busy records,
// reported as metrics: a measurement, not a check. Run it alone, so that no other test shares the
// process's memory: go test -run '^$' -bench StoreMemory -benchtime 1x ./connections/
func BenchmarkStoreMemory(b *testing.B) {
	for b.Loop() {
		measureMemory(b, func() *Store {
			s, err := Open(Config{Dir: filepath.Join(b.TempDir(), "connections")})
			if err != nil {
				b.Fatal(err)
			}
			return s
		})
	}
}

// measureMemory opens a store, puts 20,000 records, touches and flushes them all ten times (the steady
// state of 20,000 busy connections), lists them, and logs the growth of the process's resident memory:
// anonymous (the Go heap, garbage included until the runtime returns it) and file (Badger's
// memory-mapped files).
func measureMemory(t testing.TB, open func() *Store) {
	const n = 20_000
	runtime.GC()
	debug.FreeOSMemory()
	before := readRSS(t)
	s := open()
	defer s.Close()
	opened := readRSS(t)
	r := benchRecord()
	v, _ := encode(r)
	ids := make([]string, n)
	for i := range n {
		ids[i] = NewID(testNode)
		r.ID = ids[i]
		if err := s.Put(r); err != nil {
			t.Fatal(err)
		}
	}
	put := readRSS(t)
	for _, id := range ids {
		s.Touch(id, time.Now())
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Count(); err != nil || c != n {
		t.Fatalf("Count = %d, %v; want %d", c, err, n)
	}
	flushed := readRSS(t)
	// The steady state of 20,000 busy connections: every record rewritten every flush interval.
	const rounds = 10
	peak := flushed
	for range rounds {
		for _, id := range ids {
			s.Touch(id, time.Now())
		}
		if err := s.flush(); err != nil {
			t.Fatal(err)
		}
		if now := readRSS(t); now.anon+now.file > peak.anon+peak.file {
			peak = now
		}
	}
	busy := readRSS(t)
	recs, err := s.List("", 0)
	if err != nil || len(recs) != n {
		t.Fatalf("List = %d, %v; want %d", len(recs), err, n)
	}
	listed := readRSS(t)
	recs = nil
	time.Sleep(3 * time.Second) // Badger releases idle table-builder buffers after 2s
	runtime.GC()
	debug.FreeOSMemory()
	settled := readRSS(t)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	t.Logf("%d records of %d bytes stored", n, len(v))
	t.Logf("growth from before Open (anon + file):")
	t.Logf("  open:                          %s", opened.sub(before))
	t.Logf("  after %d puts:              %s", n, put.sub(before))
	t.Logf("  after touching all and a flush: %s", flushed.sub(before))
	t.Logf("  after %d more flushes of all:  %s; the highest seen %s", rounds, busy.sub(before), peak.sub(before))
	t.Logf("  holding List of all:           %s", listed.sub(before))
	t.Logf("  settled (GC, memory returned): %s; Go heap in use %.1f MiB", settled.sub(before), float64(ms.HeapInuse)/(1<<20))
	if b, ok := t.(*testing.B); ok {
		b.ReportMetric(peak.mib(before), "MiB-peak")
		b.ReportMetric(settled.mib(before), "MiB-settled")
	}
}

// mib is the growth from b to a, anonymous and file together, in MiB.
func (a rss) mib(b rss) float64 { return float64(a.anon+a.file-b.anon-b.file) / (1 << 20) }

// rss is resident memory, from /proc/self/status.
type rss struct{ anon, file int64 }

func (a rss) sub(b rss) string {
	const mib = 1 << 20
	return fmt.Sprintf("%5.1f MiB (anon %5.1f, file %5.1f)", float64(a.anon+a.file-b.anon-b.file)/mib, float64(a.anon-b.anon)/mib, float64(a.file-b.file)/mib)
}

// readRSS reads the resident memory of this process.
func readRSS(t testing.TB) rss {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	var r rss
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "RssAnon" && name != "RssFile") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("%s %q: %v", name, v, err)
		}
		if name == "RssAnon" {
			r.anon = kb << 10
		} else {
			r.file = kb << 10
		}
	}
	return r
}

// waitFor polls cond until it holds, failing the test after a few seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func equal(a, b Record) bool {
	return a.ID == b.ID && a.API == b.API && a.Stage == b.Stage &&
		a.ConnectedAt.Equal(b.ConnectedAt) && a.LastActiveAt.Equal(b.LastActiveAt) &&
		a.SourceIP == b.SourceIP && a.UserAgent == b.UserAgent && string(a.Authorizer) == string(b.Authorizer)
}
