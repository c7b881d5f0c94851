// Package apikeys keeps a stack's API keys and their usage quotas in JetStream. A key is shown once,
// when created; the store keeps only its SHA-256, so a request's x-api-key is looked up by its hash,
// in memory, from a copy every node keeps up to date by watching the bucket.
//
// Quotas count requests per key per period (a UTC day, week from Monday, or month). Each node counts
// locally and adds its counts to the shared counter in JetStream every FlushInterval, reading the
// others' back at the same time, so counts survive restarts and every node sees about the same total.
// Between flushes a node does not see the others' requests: with N nodes a key can exceed its quota by
// at most what N-1 nodes admit in one FlushInterval.
package apikeys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Errors.
var (
	ErrExists   = errors.New("an API key with this name exists")
	ErrNotFound = errors.New("no API key with this name")
	ErrInvalid  = errors.New("invalid API key request")
)

// Defaults.
const (
	// DefaultFlushInterval is how often a node adds its counts to the shared counters.
	DefaultFlushInterval = time.Second
	// keyBytes is the random part of a key: 30 bytes, 40 characters of base64url, within API
	// Gateway's 20 to 128.
	keyBytes = 30
	// keyPrefix marks Gatehouse API keys, so that one pasted somewhere is recognisable.
	keyPrefix = "ghk_"
)

var keyName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Periods of a quota.
const (
	PeriodDay   = "day"
	PeriodWeek  = "week"
	PeriodMonth = "month"
)

// Key is an API key as stored: never the key itself.
type Key struct {
	SchemaVersion int       `json:"schemaVersion"`
	Name          string    `json:"name"`
	Plan          string    `json:"plan"`
	SHA256        string    `json:"sha256"`
	CreatedAt     time.Time `json:"createdAt"`
}

// Quota is a usage plan's quota: at most Limit requests per Period.
type Quota struct {
	Limit  int64
	Period string
}

// Store is the API keys and quota counters of one stack. It is safe for concurrent use.
type Store struct {
	keys, counters jetstream.KeyValue
	log            *slog.Logger
	flushEvery     time.Duration
	now            func() time.Time

	mu     sync.RWMutex
	byHash map[string]Key // by SHA-256 of the key
	synced chan struct{}

	cmu    sync.Mutex
	counts map[string]*counter // by counter key: key hash + period start
}

// counter is one key's count in one period on this node.
type counter struct {
	global   int64 // the shared count as last read
	pending  int64 // admitted here since the last flush
	loaded   bool
	lastUsed time.Time
}

// forgetAfter is how long an unused counter stays in memory; the shared count remains.
const forgetAfter = 10 * time.Minute

// Config configures a Store.
type Config struct {
	Stack  string
	Logger *slog.Logger
	// FlushInterval is how often counts are shared; default DefaultFlushInterval.
	FlushInterval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Bucket names.
func keysBucket(stack string) string     { return "gh_" + stack + "_apikeys" }
func countersBucket(stack string) string { return "gh_" + stack + "_quota" }

// Open binds to (creating if needed) the stack's buckets. Call Run to load the keys and share counts.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	keys, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: keysBucket(cfg.Stack), Description: "Gatehouse API keys (hashed)", History: 1, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("apikeys: %w", err)
	}
	counters, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: countersBucket(cfg.Stack), Description: "Gatehouse API key quota counters", History: 1,
		Storage: jetstream.FileStorage, TTL: 40 * 24 * time.Hour, // a month's counter outlives its month
	})
	if err != nil {
		return nil, fmt.Errorf("apikeys: %w", err)
	}
	return &Store{keys: keys, counters: counters, log: cfg.Logger, flushEvery: cfg.FlushInterval, now: cfg.Now,
		byHash: map[string]Key{}, synced: make(chan struct{}), counts: map[string]*counter{}}, nil
}

// Synced is closed once Run has loaded every key.
func (s *Store) Synced() <-chan struct{} { return s.synced }

// Run keeps the in-memory copy of the keys up to date and shares quota counts, until ctx is done.
func (s *Store) Run(ctx context.Context) error {
	w, err := s.keys.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("apikeys: watching keys: %w", err)
	}
	defer w.Stop()
	flush := time.NewTicker(s.flushEvery)
	defer flush.Stop()
	synced := false
	for {
		select {
		case <-ctx.Done():
			s.flush(context.Background())
			return nil
		case <-flush.C:
			s.flush(ctx)
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("apikeys: the watch stopped")
			}
			if e == nil {
				if !synced {
					synced = true
					close(s.synced)
				}
				continue
			}
			s.apply(e)
		}
	}
}

func (s *Store) apply(e jetstream.KeyValueEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hash := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		delete(s.byHash, hash)
		return
	}
	var k Key
	if err := json.Unmarshal(e.Value(), &k); err != nil || k.SchemaVersion != 1 || k.SHA256 != hash {
		s.log.Warn("skipping an unreadable API key record", "key", hash)
		delete(s.byHash, hash)
		return
	}
	s.byHash[hash] = k
}

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Create makes a key named name in plan and returns it: the only time it is seen.
func (s *Store) Create(ctx context.Context, name, plan string) (string, Key, error) {
	if !keyName.MatchString(name) || plan == "" {
		return "", Key{}, fmt.Errorf("%w: key names are 1 to 64 letters, digits, - and _, and a key needs a plan", ErrInvalid)
	}
	if _, err := s.find(ctx, name); err == nil {
		return "", Key{}, ErrExists
	}
	b := make([]byte, keyBytes)
	rand.Read(b)
	secret := keyPrefix + base64.RawURLEncoding.EncodeToString(b)
	k := Key{SchemaVersion: 1, Name: name, Plan: plan, SHA256: hashKey(secret), CreatedAt: s.now().UTC().Truncate(time.Second)}
	data, _ := json.Marshal(k)
	if _, err := s.keys.Create(ctx, k.SHA256, data); err != nil {
		return "", Key{}, fmt.Errorf("apikeys: storing key: %w", err)
	}
	// The name index refuses a second key of the same name made at the same moment.
	if _, err := s.keys.Create(ctx, "name."+name, []byte(k.SHA256)); err != nil {
		s.keys.Delete(ctx, k.SHA256)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return "", Key{}, ErrExists
		}
		return "", Key{}, fmt.Errorf("apikeys: storing key: %w", err)
	}
	// Seen by this node's List and Lookup at once, not only when the watch brings it back.
	s.mu.Lock()
	s.byHash[k.SHA256] = k
	s.mu.Unlock()
	return secret, k, nil
}

// find returns the stored key named name.
func (s *Store) find(ctx context.Context, name string) (Key, error) {
	e, err := s.keys.Get(ctx, "name."+name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Key{}, ErrNotFound
	}
	if err != nil {
		return Key{}, err
	}
	rec, err := s.keys.Get(ctx, string(e.Value()))
	if err != nil {
		return Key{}, ErrNotFound
	}
	var k Key
	if err := json.Unmarshal(rec.Value(), &k); err != nil {
		return Key{}, err
	}
	return k, nil
}

// List returns every key, sorted by name.
func (s *Store) List(ctx context.Context) ([]Key, error) {
	s.mu.RLock()
	out := make([]Key, 0, len(s.byHash))
	for _, k := range s.byHash {
		out = append(out, k)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes the key named name; it stops working on every node at once.
func (s *Store) Delete(ctx context.Context, name string) error {
	k, err := s.find(ctx, name)
	if err != nil {
		return err
	}
	if err := s.keys.Delete(ctx, k.SHA256); err != nil {
		return fmt.Errorf("apikeys: deleting key: %w", err)
	}
	s.mu.Lock()
	delete(s.byHash, k.SHA256)
	s.mu.Unlock()
	return s.keys.Delete(ctx, "name."+name)
}

// Lookup finds the key a request presented, in memory.
func (s *Store) Lookup(presented string) (Key, bool) {
	if presented == "" {
		return Key{}, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.byHash[hashKey(presented)]
	return k, ok
}

// periodStart is the start of the quota period containing t, in UTC.
func periodStart(period string, t time.Time) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch period {
	case PeriodWeek:
		return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7)) // back to Monday
	case PeriodMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return day
}

// Consume counts one request of key k against quota q and reports whether it is within the quota.
// A request over the quota is not counted.
func (s *Store) Consume(ctx context.Context, k Key, q Quota) (bool, error) {
	if q.Limit <= 0 {
		return true, nil
	}
	id := k.SHA256[:32] + "." + strconv.FormatInt(periodStart(q.Period, s.now()).Unix(), 10)
	s.cmu.Lock()
	c := s.counts[id]
	if c == nil {
		c = &counter{}
		s.counts[id] = c
	}
	loaded := c.loaded
	s.cmu.Unlock()
	if !loaded {
		s.cmu.Lock()
		c.lastUsed = s.now()
		s.cmu.Unlock()
		// First use of this counter on this node: read the shared count once.
		var global int64
		if e, err := s.counters.Get(ctx, id); err == nil {
			global, _ = strconv.ParseInt(string(e.Value()), 10, 64)
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, fmt.Errorf("apikeys: reading quota: %w", err)
		}
		s.cmu.Lock()
		if !c.loaded {
			c.global, c.loaded = global, true
		}
		s.cmu.Unlock()
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if c.global+c.pending >= q.Limit {
		return false, nil
	}
	c.pending++
	c.lastUsed = s.now()
	return true, nil
}

// flush adds each counter's pending count to the shared one, reading the others' counts back.
func (s *Store) flush(ctx context.Context) {
	s.cmu.Lock()
	work := map[string]int64{}
	for id, c := range s.counts {
		if c.pending > 0 || c.loaded {
			work[id] = c.pending
		}
	}
	s.cmu.Unlock()
	for id, add := range work {
		total, err := s.addShared(ctx, id, add)
		if err != nil {
			s.log.Warn("sharing a quota count", "err", err)
			continue
		}
		s.cmu.Lock()
		if c := s.counts[id]; c != nil {
			c.pending -= add
			c.global = total
		}
		s.cmu.Unlock()
	}
	// Forget counters nobody used for a while (of periods that are over, mostly).
	s.cmu.Lock()
	for id, c := range s.counts {
		if c.pending == 0 && s.now().Sub(c.lastUsed) > forgetAfter {
			delete(s.counts, id)
		}
	}
	s.cmu.Unlock()
}

// addShared adds n to a shared counter with compare-and-set, and returns the new total.
func (s *Store) addShared(ctx context.Context, id string, n int64) (int64, error) {
	for range 20 {
		e, err := s.counters.Get(ctx, id)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if n == 0 {
				return 0, nil
			}
			if _, err := s.counters.Create(ctx, id, []byte(strconv.FormatInt(n, 10))); err == nil {
				return n, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return 0, err
			}
			continue
		case err != nil:
			return 0, err
		}
		cur, _ := strconv.ParseInt(string(e.Value()), 10, 64)
		if n == 0 {
			return cur, nil
		}
		if _, err := s.counters.Update(ctx, id, []byte(strconv.FormatInt(cur+n, 10)), e.Revision()); err == nil {
			return cur + n, nil
		}
	}
	return 0, errors.New("apikeys: quota counter contended")
}
