package gateway

import (
	"container/list"
	"sync"
	"time"
)

// defaultAuthCacheEntries bounds the function authorizers' cached answers of one gateway. An answer
// is small (a verdict and the authorizer's context), so the bound costs a few MB at most, and it
// keeps callers who send a new identity value with every request from growing the cache without
// limit until the answers' TTL passes.
const defaultAuthCacheEntries = 10_000

// authCache holds function authorizers' answers by cache key, at most max of them: putting one
// more evicts the least recently used, and an answer found expired is dropped. It is safe for
// concurrent use; its zero value holds defaultAuthCacheEntries.
//
// A list and a map rather than github.com/hashicorp/golang-lru: the module does not depend on it,
// and this cache needs only get, put and eviction of the oldest.
type authCache struct {
	mu    sync.Mutex
	max   int
	order list.List // of *authCacheEntry, most recently used first
	items map[string]*list.Element
}

type authCacheEntry struct {
	key string
	r   authResult
}

// get returns the answer cached under key if it has not expired at now.
func (c *authCache) get(key string, now time.Time) (authResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return authResult{}, false
	}
	ent := e.Value.(*authCacheEntry)
	if !now.Before(ent.r.expires) {
		c.order.Remove(e)
		delete(c.items, key)
		return authResult{}, false
	}
	c.order.MoveToFront(e)
	return ent.r, true
}

// put caches r under key, evicting the least recently used answer when the cache is full.
func (c *authCache) put(key string, r authResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = map[string]*list.Element{}
		if c.max <= 0 {
			c.max = defaultAuthCacheEntries
		}
	}
	if e, ok := c.items[key]; ok {
		e.Value.(*authCacheEntry).r = r
		c.order.MoveToFront(e)
		return
	}
	for c.order.Len() >= c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*authCacheEntry).key)
	}
	c.items[key] = c.order.PushFront(&authCacheEntry{key: key, r: r})
}

// len returns the number of answers held.
func (c *authCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
