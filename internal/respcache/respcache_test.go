package respcache

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// entryOfSize returns an entry whose Size is exactly size (at least EntryOverhead).
func entryOfSize(size int) *Entry {
	return &Entry{Status: 200, Body: make([]byte, size-EntryOverhead)}
}

// checkInvariants fails t unless the map, the recency list and the expiry heap hold the same items, the
// byte count equals the sum of their sizes, and that sum is within the capacity.
func checkInvariants(t *testing.T, c *Cache) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.recency.Len(); n != len(c.items) || n != c.expiry.Len() {
		t.Fatalf("map has %d items, list %d, heap %d", len(c.items), n, c.expiry.Len())
	}
	var sum int64
	for el := c.recency.Front(); el != nil; el = el.Next() {
		it := el.Value.(*item)
		if c.items[it.key] != el {
			t.Fatalf("map entry for %q is not its list element", it.key)
		}
		if it.heapIdx < 0 || it.heapIdx >= len(c.expiry) || c.expiry[it.heapIdx] != it {
			t.Fatalf("item %q has heap index %d, which does not hold it", it.key, it.heapIdx)
		}
		if int64(it.entry.Size()) != it.cost {
			t.Fatalf("item %q costs %d, its entry's size is %d", it.key, it.cost, it.entry.Size())
		}
		sum += int64(it.entry.Size())
	}
	for i := 1; i < len(c.expiry); i++ {
		if c.expiry[i].expires.Before(c.expiry[(i-1)/2].expires) {
			t.Fatalf("heap order broken at %d", i)
		}
	}
	if sum != c.bytes {
		t.Fatalf("cache counts %d bytes, its entries' sizes sum to %d", c.bytes, sum)
	}
	if c.bytes > c.capacity {
		t.Fatalf("cache holds %d bytes, over its capacity %d", c.bytes, c.capacity)
	}
}

// keys returns the keys stored in c, most recently used first.
func keys(c *Cache) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ks []string
	for el := c.recency.Front(); el != nil; el = el.Next() {
		ks = append(ks, el.Value.(*item).key)
	}
	return ks
}

func TestEntrySize(t *testing.T) {
	tests := []struct {
		name  string
		entry Entry
		want  int
	}{
		{"empty", Entry{Status: 204}, EntryOverhead},
		{"body", Entry{Status: 200, Body: []byte("hello")}, EntryOverhead + 5},
		{"headers", Entry{Status: 200, Header: [][2]string{{"Content-Type", "text/plain"}, {"X-A", ""}}}, EntryOverhead + 12 + 10 + 3},
		{"both", Entry{Status: 200, Header: [][2]string{{"A", "bc"}}, Body: []byte("xyz")}, EntryOverhead + 3 + 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.entry.Size(); got != tt.want {
				t.Errorf("Size() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestGetHitAndMiss(t *testing.T) {
	c := New(1 << 20)
	e := &Entry{Status: 200, Header: [][2]string{{"Content-Type", "application/json"}}, Body: []byte(`{"ok":true}`)}
	if got, _, ok := c.Get("k", t0); ok || got != nil {
		t.Fatalf("Get on an empty cache = %v, %v", got, ok)
	}
	if !c.Put("k", e, time.Minute, t0) {
		t.Fatal("Put refused a small entry")
	}
	got, left, ok := c.Get("k", t0.Add(10*time.Second))
	if !ok || got != e {
		t.Fatalf("Get after Put = %v, %v, want the entry put", got, ok)
	}
	if left != 50*time.Second {
		t.Errorf("remaining TTL = %v, want 50s", left)
	}
	if _, _, ok := c.Get("other", t0); ok {
		t.Error("Get of a key never put hit")
	}
	checkInvariants(t, c)
}

func TestTTLExpiry(t *testing.T) {
	tests := []struct {
		name   string
		after  time.Duration
		hit    bool
		remain time.Duration
	}{
		{"just put", 0, true, 30 * time.Second},
		{"one nanosecond before", 30*time.Second - 1, true, 1},
		{"at expiry", 30 * time.Second, false, 0},
		{"long after", time.Hour, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(1 << 20)
			c.Put("k", entryOfSize(200), 30*time.Second, t0)
			_, left, ok := c.Get("k", t0.Add(tt.after))
			if ok != tt.hit || left != tt.remain {
				t.Fatalf("Get = _, %v, %v; want _, %v, %v", left, ok, tt.remain, tt.hit)
			}
			st := c.Stats()
			if tt.hit {
				if st.Entries != 1 || st.Expired != 0 {
					t.Errorf("after a hit: %+v", st)
				}
				return
			}
			if st.Entries != 0 || st.Bytes != 0 || st.Expired != 1 || st.Misses != 1 {
				t.Errorf("an expired entry was not removed and counted: %+v", st)
			}
			// Once removed, a later Get (even with an earlier clock) misses too.
			if _, _, ok := c.Get("k", t0); ok {
				t.Error("expired entry came back")
			}
			checkInvariants(t, c)
		})
	}
}

func TestLRUEvictionOrder(t *testing.T) {
	// Room for exactly 8 entries of 250 bytes; each is under a quarter of the capacity.
	c := New(8 * 250)
	for i := range 8 {
		if !c.Put(strconv.Itoa(i), entryOfSize(250), time.Hour, t0) {
			t.Fatalf("Put %d refused", i)
		}
	}
	// Touch 0, 1 and 2, so 3 is now the least recently used, then 4, ...
	for _, k := range []string{"0", "1", "2"} {
		if _, _, ok := c.Get(k, t0); !ok {
			t.Fatalf("Get %s missed", k)
		}
	}
	// Three more entries evict 3, 4 and 5.
	for _, k := range []string{"a", "b", "c"} {
		if !c.Put(k, entryOfSize(250), time.Hour, t0) {
			t.Fatalf("Put %s refused", k)
		}
	}
	want := []string{"c", "b", "a", "2", "1", "0", "7", "6"}
	if got := keys(c); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("survivors, most recent first = %v, want %v", got, want)
	}
	for _, k := range []string{"3", "4", "5"} {
		if _, _, ok := c.Get(k, t0); ok {
			t.Errorf("%s should have been evicted", k)
		}
	}
	// A larger entry evicts as many as it needs: 500 bytes takes the two least recent, 6 and 7.
	if !c.Put("big", entryOfSize(500), time.Hour, t0) {
		t.Fatal("Put big refused")
	}
	want = []string{"big", "c", "b", "a", "2", "1", "0"}
	if got := keys(c); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after big: %v, want %v", got, want)
	}
	if st := c.Stats(); st.Evictions != 5 || st.Expired != 0 || st.Bytes != 8*250 {
		t.Errorf("stats = %+v, want 5 evictions and a full cache", st)
	}
	checkInvariants(t, c)
}

func TestExpiredEvictedBeforeLRU(t *testing.T) {
	c := New(4 * 250)
	c.Put("old", entryOfSize(250), time.Hour, t0)
	c.Put("short", entryOfSize(250), time.Second, t0) // expires first although used more recently
	c.Put("x", entryOfSize(250), time.Hour, t0)
	c.Put("y", entryOfSize(250), time.Hour, t0)
	c.Get("old", t0)
	c.Get("short", t0) // most recent first: short, old, y, x

	// At t0+2s, "short" has expired: it goes before the least recently used live entry, "x".
	if !c.Put("z", entryOfSize(250), time.Hour, t0.Add(2*time.Second)) {
		t.Fatal("Put z refused")
	}
	want := []string{"z", "old", "y", "x"}
	if got := keys(c); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("survivors = %v, want %v", got, want)
	}
	if st := c.Stats(); st.Expired != 1 || st.Evictions != 0 {
		t.Errorf("stats = %+v, want one expired and no evictions", st)
	}
	// With nothing expired, the least recently used live entry goes.
	c.Put("w", entryOfSize(250), time.Hour, t0.Add(2*time.Second))
	want = []string{"w", "z", "old", "y"}
	if got := keys(c); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("survivors = %v, want %v", got, want)
	}
	checkInvariants(t, c)
}

func TestExpiredNotRemovedWithoutNeed(t *testing.T) {
	c := New(1 << 20)
	c.Put("a", entryOfSize(200), time.Second, t0)
	c.Put("b", entryOfSize(200), time.Hour, t0.Add(time.Minute))
	// "a" has expired, but there was room for "b": it stays (and counts) until a Get or lack of room.
	if st := c.Stats(); st.Entries != 2 || st.Expired != 0 {
		t.Errorf("stats = %+v", st)
	}
	checkInvariants(t, c)
}

func TestPutRefused(t *testing.T) {
	const capacity = 4000 // a quarter is 1000 bytes
	tests := []struct {
		name  string
		entry *Entry
		ttl   time.Duration
		want  bool
	}{
		{"quarter exactly", entryOfSize(capacity / 4), time.Minute, true},
		{"one byte over a quarter", entryOfSize(capacity/4 + 1), time.Minute, false},
		{"larger than the cache", entryOfSize(2 * capacity), time.Minute, false},
		{"zero ttl", entryOfSize(200), 0, false},
		{"negative ttl", entryOfSize(200), -time.Second, false},
		{"nil entry", nil, time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(capacity)
			c.Put("keep", entryOfSize(200), time.Minute, t0)
			if got := c.Put("k", tt.entry, tt.ttl, t0); got != tt.want {
				t.Fatalf("Put = %v, want %v", got, tt.want)
			}
			_, _, ok := c.Get("k", t0)
			if ok != tt.want {
				t.Errorf("Get after Put = %v, want %v", ok, tt.want)
			}
			if _, _, ok := c.Get("keep", t0); !ok {
				t.Error("a refused Put evicted another entry")
			}
			checkInvariants(t, c)
		})
	}
}

func TestRefusedPutRemovesOldEntry(t *testing.T) {
	c := New(4000)
	c.Put("k", entryOfSize(200), time.Minute, t0)
	if c.Put("k", entryOfSize(2000), time.Minute, t0) {
		t.Fatal("oversize Put accepted")
	}
	if _, _, ok := c.Get("k", t0); ok {
		t.Error("the entry replaced by a refused Put is still served")
	}
	if st := c.Stats(); st.Entries != 0 || st.Bytes != 0 || st.Evictions != 0 {
		t.Errorf("stats = %+v", st)
	}
	checkInvariants(t, c)
}

func TestZeroCapacity(t *testing.T) {
	for _, capacity := range []int64{0, -1, 4*EntryOverhead - 1} {
		c := New(capacity)
		if c.Put("k", &Entry{Status: 204}, time.Minute, t0) {
			t.Errorf("capacity %d: Put stored an entry", capacity)
		}
		if st := c.Stats(); st.Entries != 0 || st.Bytes != 0 || st.Capacity != max(capacity, 0) {
			t.Errorf("capacity %d: stats = %+v", capacity, st)
		}
	}
}

func TestPutReplacesExisting(t *testing.T) {
	c := New(4000)
	c.Put("a", entryOfSize(300), time.Minute, t0)
	c.Put("b", entryOfSize(200), time.Minute, t0)
	e2 := entryOfSize(700)
	if !c.Put("a", e2, 2*time.Minute, t0.Add(time.Second)) {
		t.Fatal("replacing Put refused")
	}
	if st := c.Stats(); st.Entries != 2 || st.Bytes != 900 || st.Evictions != 0 {
		t.Errorf("after growing a: stats = %+v, want 2 entries of 900 bytes", st)
	}
	got, left, ok := c.Get("a", t0.Add(time.Second))
	if !ok || got != e2 || left != 2*time.Minute {
		t.Errorf("Get a = %p, %v, %v; want the new entry with its new TTL", got, left, ok)
	}
	c.Put("a", entryOfSize(150), time.Minute, t0)
	if st := c.Stats(); st.Entries != 2 || st.Bytes != 350 {
		t.Errorf("after shrinking a: stats = %+v, want 350 bytes", st)
	}
	// Replacing makes the key the most recently used.
	c.Put("b", entryOfSize(200), time.Minute, t0)
	c.Put("a", entryOfSize(200), time.Minute, t0)
	if got, want := keys(c), []string{"a", "b"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("order = %v, want %v", got, want)
	}
	checkInvariants(t, c)
}

func TestReplaceInFullCacheEvictsOthersOnly(t *testing.T) {
	c := New(8 * 250)
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		c.Put(k, entryOfSize(250), time.Hour, t0)
	}
	// "a" is the least recently used, but replacing it frees its own bytes first: nothing else goes.
	c.Put("a", entryOfSize(250), time.Hour, t0)
	if got, want := keys(c), []string{"a", "h", "g", "f", "e", "d", "c", "b"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("order = %v, want %v", got, want)
	}
	// Growing it needs 10 more bytes: "b", now the least recently used, goes.
	c.Put("a", entryOfSize(260), time.Hour, t0)
	if got, want := keys(c), []string{"a", "h", "g", "f", "e", "d", "c"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("order = %v, want %v", got, want)
	}
	if st := c.Stats(); st.Evictions != 1 || st.Bytes != 6*250+260 {
		t.Errorf("stats = %+v, want 1 eviction and %d bytes", st, 6*250+260)
	}
	checkInvariants(t, c)
}

func TestDeleteAndFlush(t *testing.T) {
	c := New(1 << 20)
	for _, k := range []string{"a", "b", "c"} {
		c.Put(k, entryOfSize(300), time.Minute, t0)
	}
	if !c.Delete("b") {
		t.Error("Delete of a stored key = false")
	}
	if c.Delete("b") {
		t.Error("second Delete = true")
	}
	if c.Delete("never") {
		t.Error("Delete of an unknown key = true")
	}
	if _, _, ok := c.Get("b", t0); ok {
		t.Error("deleted entry still served")
	}
	if st := c.Stats(); st.Entries != 2 || st.Bytes != 600 {
		t.Errorf("after Delete: stats = %+v", st)
	}
	checkInvariants(t, c)

	// Delete removes an expired entry too, without counting it as expired.
	c.Put("old", entryOfSize(300), time.Second, t0)
	if !c.Delete("old") {
		t.Error("Delete of an expired entry = false")
	}

	c.Get("a", t0)
	before := c.Stats()
	c.Flush()
	st := c.Stats()
	if st.Entries != 0 || st.Bytes != 0 {
		t.Errorf("after Flush: %d entries, %d bytes", st.Entries, st.Bytes)
	}
	if st.Hits != before.Hits || st.Misses != before.Misses || st.Expired != 0 || st.Evictions != 0 {
		t.Errorf("Flush changed the counters: %+v, before %+v", st, before)
	}
	for _, k := range []string{"a", "c"} {
		if _, _, ok := c.Get(k, t0); ok {
			t.Errorf("%s served after Flush", k)
		}
	}
	checkInvariants(t, c)
	// The cache is usable after a flush.
	if !c.Put("a", entryOfSize(300), time.Minute, t0) {
		t.Fatal("Put after Flush refused")
	}
	if _, _, ok := c.Get("a", t0); !ok {
		t.Error("Get after Flush and Put missed")
	}
	checkInvariants(t, c)
}

func TestStatsCounters(t *testing.T) {
	c := New(4 * 250)
	c.Put("a", entryOfSize(250), time.Hour, t0)
	c.Put("b", entryOfSize(250), time.Second, t0)
	c.Put("c", entryOfSize(250), time.Hour, t0)
	c.Get("a", t0)                              // hit
	c.Get("a", t0)                              // hit
	c.Get("zz", t0)                             // miss
	c.Get("b", t0.Add(time.Minute))             // miss, expired
	c.Put("d", entryOfSize(250), time.Hour, t0) // fits in the room b left
	c.Put("e", entryOfSize(250), time.Hour, t0) // fits: the cache is now full
	c.Put("f", entryOfSize(250), time.Hour, t0) // evicts c, the least recently used
	c.Put("g", entryOfSize(250), time.Hour, t0) // evicts a
	c.Put("g", entryOfSize(250), 0, t0)         // refused; removes g, counts nothing
	c.Delete("d")                               // counts nothing
	c.Get("c", t0)                              // miss
	c.Get("e", t0)                              // hit

	want := Stats{Entries: 2, Bytes: 500, Capacity: 1000, Hits: 3, Misses: 3, Evictions: 2, Expired: 1}
	if got := c.Stats(); got != want {
		t.Errorf("Stats() = %+v\nwant      %+v", got, want)
	}
	checkInvariants(t, c)
}

func TestKey(t *testing.T) {
	tests := []struct {
		name string
		a, b []string
	}{
		{"split point", []string{"a", "bc"}, []string{"ab", "c"}},
		{"empty part", []string{"a", ""}, []string{"a"}},
		{"no parts and one empty", []string{}, []string{""}},
		{"digits and colons", []string{"1:a", "b"}, []string{"1", "a", "b"}},
		{"looks like a prefix", []string{"GET", "3:abc"}, []string{"GET", "3", "abc"}},
		{"separator-like content", []string{"a|b", "c"}, []string{"a", "b|c"}},
		{"long part", []string{string(make([]byte, 12345)), "x"}, []string{string(make([]byte, 12346))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, kb := Key(tt.a...), Key(tt.b...)
			if ka == kb {
				t.Errorf("Key(%q) == Key(%q) == %q", tt.a, tt.b, ka)
			}
			if ka != Key(tt.a...) {
				t.Error("Key is not deterministic")
			}
		})
	}
	if got, want := Key("GET", "/pets/{id}", "id=7"), "3:GET10:/pets/{id}4:id=7"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
}

func FuzzKey(f *testing.F) {
	f.Add("a", "bc", "ab", "c")
	f.Add("", "", "", "")
	f.Add("1:", "a", "1", ":a")
	f.Fuzz(func(t *testing.T, a1, a2, b1, b2 string) {
		if (a1 == b1 && a2 == b2) != (Key(a1, a2) == Key(b1, b2)) {
			t.Errorf("Key(%q, %q) vs Key(%q, %q): equal keys must mean equal parts", a1, a2, b1, b2)
		}
	})
}

func TestGetDoesNotAllocate(t *testing.T) {
	c := New(1 << 20)
	c.Put("k", entryOfSize(500), time.Hour, t0)
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, ok := c.Get("k", t0); !ok {
			t.Fatal("miss")
		}
	})
	if allocs != 0 {
		t.Errorf("Get on a hit allocates %v times", allocs)
	}
}

// TestConcurrent hammers one cache from 8 goroutines with Put, Get and Delete on overlapping keys, with
// entries of varied sizes and TTLs and a clock that moves forward, and checks the byte bound throughout
// and the accounting at the end. Run it with -race.
func TestConcurrent(t *testing.T) {
	const (
		goroutines = 8
		iterations = 5000
		capacity   = 64 << 10
	)
	c := New(capacity)
	var clock struct {
		sync.Mutex
		t time.Time
	}
	clock.t = t0
	now := func(advance time.Duration) time.Time {
		clock.Lock()
		defer clock.Unlock()
		clock.t = clock.t.Add(advance)
		return clock.t
	}
	var wg sync.WaitGroup
	errs := make(chan string, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range iterations {
				key := Key("GET", "/items/"+strconv.Itoa(r.IntN(200)))
				switch op := r.IntN(10); {
				case op < 5:
					if e, _, ok := c.Get(key, now(0)); ok && e.Status != 200 {
						errs <- fmt.Sprintf("Get %s: status %d", key, e.Status)
						return
					}
				case op < 9:
					size := EntryOverhead + r.IntN(capacity/4)
					c.Put(key, entryOfSize(size), time.Duration(1+r.IntN(50))*time.Millisecond, now(time.Millisecond))
					if st := c.Stats(); st.Bytes > st.Capacity {
						errs <- fmt.Sprintf("after Put: %d bytes over capacity %d", st.Bytes, st.Capacity)
						return
					}
				default:
					c.Delete(key)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	checkInvariants(t, c)
	st := c.Stats()
	if st.Hits+st.Misses == 0 || st.Evictions == 0 || st.Expired == 0 {
		t.Errorf("the hammer did not exercise hits, evictions and expiry: %+v", st)
	}
}

func ExampleCache() {
	c := New(1 << 20)
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	key := Key("GET", "/pets/{id}", "id=7")
	c.Put(key, &Entry{Status: 200, Header: [][2]string{{"Content-Type", "application/json"}}, Body: []byte(`{"id":7}`)}, 300*time.Second, now)

	if e, left, ok := c.Get(key, now.Add(time.Minute)); ok {
		fmt.Println(e.Status, string(e.Body), left)
	}
	if _, _, ok := c.Get(key, now.Add(5*time.Minute)); !ok {
		fmt.Println("expired")
	}
	st := c.Stats()
	fmt.Println(st.Hits, st.Misses, st.Expired)
	// Output:
	// 200 {"id":7} 4m0s
	// expired
	// 1 1 1
}

func BenchmarkGetHit(b *testing.B) {
	const n = 1024
	c := New(64 << 20)
	ks := make([]string, n)
	for i := range ks {
		ks[i] = Key("GET", "/items/"+strconv.Itoa(i))
		c.Put(ks[i], entryOfSize(1024), time.Hour, t0)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, _, ok := c.Get(ks[i%n], t0); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	const n = 1024
	c := New(64 << 20)
	ks := make([]string, n)
	for i := range ks {
		ks[i] = Key("GET", "/items/"+strconv.Itoa(i))
		c.Put(ks[i], entryOfSize(1024), time.Hour, t0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if _, _, ok := c.Get(ks[i%n], t0); !ok {
				b.Fatal("miss")
			}
		}
	})
}

// BenchmarkPut puts into a full cache, so every Put also evicts one entry.
func BenchmarkPut(b *testing.B) {
	const n = 4096
	c := New(1024 * 1024) // room for 1024 of the entries below
	ks := make([]string, n)
	for i := range ks {
		ks[i] = Key("GET", "/items/"+strconv.Itoa(i))
	}
	e := entryOfSize(1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Put(ks[i%n], e, time.Hour, t0)
	}
}
