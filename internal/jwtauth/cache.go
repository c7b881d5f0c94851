package jwtauth

import (
	"crypto/sha256"
	"sync"
)

// tokenCache remembers verified tokens by the SHA-256 of their text. It holds at most size
// entries; when full, a new entry evicts an arbitrary one (Go's map iteration order is random). The
// caller checks exp on every hit, so an entry is never used past its token's expiry.
type tokenCache struct {
	size int
	mu   sync.RWMutex
	m    map[[sha256.Size]byte]*verified
}

func newTokenCache(size int) *tokenCache {
	return &tokenCache{size: size, m: make(map[[sha256.Size]byte]*verified, min(size, 1024))}
}

func (c *tokenCache) get(k [sha256.Size]byte) (*verified, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	return v, ok
}

func (c *tokenCache) put(k [sha256.Size]byte, v *verified) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.size {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
}

func (c *tokenCache) remove(k [sha256.Size]byte) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
