// Package respcache is the in-memory response cache of a REST API stage (the stage cache). It holds
// whole responses (status, headers, body) under keys the gateway builds from the method, the resource
// path and the cache-key parameters, each for its own TTL, within a capacity counted in bytes. When a
// new entry does not fit, expired entries are dropped first and then the least recently used ones.
//
// The cache is deterministic: an entry just put is returned by the next [Cache.Get] for its key unless
// it has expired, was evicted to make room for a later [Cache.Put], or was removed by [Cache.Delete] or
// [Cache.Flush]. A stage cache needs that guarantee, since a client that sees a cached response expects
// the next identical request to be answered from the cache as well.
//
// # Why it is hand-written
//
// The module already depends on ristretto (through Badger), but ristretto admits entries by estimated
// frequency and may drop a Set under contention, so a response just cached could miss on the next
// request. hashicorp/golang-lru bounds a cache by entry count, not by bytes, while a stage cache's
// capacity is a size and its responses range from a few bytes to megabytes. A mutex, a map, a
// [container/list] for recency and a heap for expiry are all this needs, and they keep the package on
// the standard library.
//
// # Concurrency
//
// A [Cache] is safe for concurrent use. Every method takes one mutex; [Cache.Get] holds it only for a
// map lookup and a move to the front of the recency list, and allocates nothing on a hit.
package respcache

import (
	"container/heap"
	"container/list"
	"strconv"
	"sync"
	"time"
)

// EntryOverhead is the fixed cost in bytes charged for every entry on top of its body and headers: the
// bookkeeping the cache keeps for it (map slot, list element, heap slot, key) and the Entry itself.
const EntryOverhead = 128

// Entry is one cached response.
//
// An Entry handed to [Cache.Put] belongs to the cache from then on, and the *Entry returned by
// [Cache.Get] is shared with every other caller that gets the same key: neither may be modified. A
// caller that needs to change a cached response (to add a header, say) copies it first.
type Entry struct {
	Status int
	Header [][2]string // response headers in order, as name/value pairs
	Body   []byte
}

// Size returns the bytes e is charged against a cache's capacity: the length of its body, the lengths
// of its header names and values, and [EntryOverhead].
func (e *Entry) Size() int {
	n := EntryOverhead + len(e.Body)
	for _, h := range e.Header {
		n += len(h[0]) + len(h[1])
	}
	return n
}

// Stats is a snapshot of a cache's contents and counters. The counters run from [New]; [Cache.Flush]
// does not reset them.
type Stats struct {
	Entries  int   // entries stored, including expired ones not yet removed
	Bytes    int64 // the sum of their sizes; never more than Capacity
	Capacity int64 // the capacity given to New

	Hits      uint64 // Get calls that returned an entry
	Misses    uint64 // Get calls that did not, including those that found an expired entry
	Evictions uint64 // live entries removed by Put to make room, least recently used first
	Expired   uint64 // expired entries removed, by the Get that found them or by a Put making room
}

// Cache is a byte-bounded LRU cache of responses with a TTL per entry. The zero value is not usable;
// call [New].
type Cache struct {
	mu       sync.Mutex
	capacity int64
	bytes    int64
	items    map[string]*list.Element // each element's Value is an *item
	recency  list.List                // front is the most recently used
	expiry   expiryHeap               // soonest expiry first
	hits     uint64
	misses   uint64
	evicted  uint64
	expired  uint64
}

// item is what the cache keeps per entry. cost is the entry's Size taken at Put, so the accounting
// stays exact even if a caller breaks the rule and modifies the entry afterwards.
type item struct {
	key     string
	entry   *Entry
	cost    int64
	expires time.Time
	heapIdx int
	elem    *list.Element
}

// New returns an empty cache that holds at most capacityBytes bytes of entries, as counted by
// [Entry.Size]. A capacity of zero or less stores nothing: every Put is refused.
func New(capacityBytes int64) *Cache {
	if capacityBytes < 0 {
		capacityBytes = 0
	}
	return &Cache{capacity: capacityBytes, items: make(map[string]*list.Element)}
}

// Get returns the entry stored under key, with the time it has left to live at now, and marks it most
// recently used. An entry whose TTL has run out by now is removed and reported as a miss.
//
// The returned entry is shared: callers must treat it as read-only.
func (c *Cache) Get(key string, now time.Time) (*Entry, time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		c.misses++
		return nil, 0, false
	}
	it := el.Value.(*item)
	left := it.expires.Sub(now)
	if left <= 0 {
		c.remove(it)
		c.expired++
		c.misses++
		return nil, 0, false
	}
	c.recency.MoveToFront(el)
	c.hits++
	return it.entry, left, true
}

// Put stores e under key for ttl from now, replacing any entry already there, and reports whether it
// did. To make room it removes expired entries first (soonest expiry first), then the least recently
// used ones.
//
// Put refuses, returning false and storing nothing, when e is nil, when ttl <= 0, or when e's size is
// more than a quarter of the capacity (no one response may take more than that share of a stage's
// cache). A refused Put still removes the entry previously stored under key, so that Get never returns a
// response older than one the caller has since tried to cache.
//
// After Put the cache owns e; see [Entry].
func (c *Cache) Put(key string, e *Entry, ttl time.Duration, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.remove(el.Value.(*item))
	}
	if e == nil || ttl <= 0 {
		return false
	}
	cost := int64(e.Size())
	if cost > c.capacity/4 {
		return false
	}
	for c.bytes+cost > c.capacity && c.expiry.Len() > 0 && !now.Before(c.expiry[0].expires) {
		c.remove(c.expiry[0])
		c.expired++
	}
	for c.bytes+cost > c.capacity {
		c.remove(c.recency.Back().Value.(*item))
		c.evicted++
	}
	it := &item{key: key, entry: e, cost: cost, expires: now.Add(ttl)}
	it.elem = c.recency.PushFront(it)
	heap.Push(&c.expiry, it)
	c.items[key] = it.elem
	c.bytes += cost
	return true
}

// Delete removes the entry stored under key, expired or not, and reports whether there was one. It is
// how a single cache entry is invalidated.
func (c *Cache) Delete(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if ok {
		c.remove(el.Value.(*item))
	}
	return ok
}

// Flush removes every entry, as a flush of the stage's cache does. The counters in [Stats] are kept.
func (c *Cache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.items)
	c.recency.Init()
	clear(c.expiry) // let the collector have the items and their entries
	c.expiry = c.expiry[:0]
	c.bytes = 0
}

// Stats returns a snapshot of the cache's contents and counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{
		Entries:   len(c.items),
		Bytes:     c.bytes,
		Capacity:  c.capacity,
		Hits:      c.hits,
		Misses:    c.misses,
		Evictions: c.evicted,
		Expired:   c.expired,
	}
}

// remove takes it out of the map, the recency list and the expiry heap. The caller holds c.mu and
// updates the counters.
func (c *Cache) remove(it *item) {
	delete(c.items, it.key)
	c.recency.Remove(it.elem)
	heap.Remove(&c.expiry, it.heapIdx)
	c.bytes -= it.cost
}

// expiryHeap orders items by expiry, soonest first, for [heap]. Each item records its index so that any
// item can be removed in O(log n).
type expiryHeap []*item

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (h *expiryHeap) Push(x any) {
	it := x.(*item)
	it.heapIdx = len(*h)
	*h = append(*h, it)
}

func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	it.heapIdx = -1
	return it
}

// Key joins parts into one cache key. Each part is written as its length in decimal, a colon and the
// part itself, so the parts can be read back unambiguously: ("a", "bc") and ("ab", "c") give different
// keys, and so do ("a", "") and ("a").
func Key(parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p) + 4 // room for a short length and the colon
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = strconv.AppendInt(b, int64(len(p)), 10)
		b = append(b, ':')
		b = append(b, p...)
	}
	return string(b)
}
