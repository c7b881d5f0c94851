package gateway

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// ThrottleSettings are the token-bucket limits of a route: Rate tokens are added per second, up to
// Burst tokens, and each request takes one; a request that finds the bucket empty is refused (429).
//
// The zero value (Rate 0 and Burst 0) means unlimited. Rate 0 with Burst > 0 admits Burst requests
// and nothing after; Rate > 0 with Burst 0 admits nothing, since the bucket never holds a whole
// token.
type ThrottleSettings struct {
	// Rate is the steady-state rate, in requests per second.
	Rate float64
	// Burst is the bucket's capacity: how many requests may be admitted at once.
	Burst int
}

// Unlimited reports whether s sets no limit.
func (s ThrottleSettings) Unlimited() bool { return s.Rate == 0 && s.Burst == 0 }

// Validate reports whether s is usable: Rate finite and not negative, Burst not negative.
func (s ThrottleSettings) Validate() error {
	if math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) || s.Rate < 0 {
		return fmt.Errorf("throttling rate %v must be a finite number ≥ 0", s.Rate)
	}
	if s.Burst < 0 {
		return fmt.Errorf("throttling burst %d must be ≥ 0", s.Burst)
	}
	return nil
}

// maxBucketSpan bounds the nanosecond quantities of a Bucket (about 73 years): with the time, the
// interval and the window each at most that, tat stays below 3·2⁶¹ and nothing overflows an int64.
const maxBucketSpan = int64(1) << 61

type bucketMode uint8

const (
	bucketUnlimited bucketMode = iota
	bucketFixed                // Rate 0: a fixed allowance of Burst tokens
	bucketRate                 // Rate > 0: generic cell rate algorithm
)

// Bucket is a token bucket. It is safe for concurrent use and lock-free: Allow is a compare-and-swap
// on a single word, and a refusal writes nothing, so a flood of refused requests does not contend.
//
// With Rate > 0 the bucket runs the generic cell rate algorithm (GCRA), the exact equivalent of a
// token bucket: the state is tat, the theoretical arrival time, in nanoseconds since the bucket was
// made; the bucket holds Burst − (max(tat, t) − t)/interval tokens at time t, where interval is
// 1/Rate. A request at t is admitted, moving tat to max(tat, t) + interval, when that leaves tat at
// most Burst intervals ahead of t.
//
// No over-admission: tat starts at 0 and every admission raises it by at least interval, so after n
// admissions tat ≥ n·interval, and the last of them needed tat − t ≤ Burst·interval, hence
// n ≤ Burst + t/interval ≤ Burst + Rate·t, t being the largest time passed to Allow so far, measured
// from the time given to NewBucket. The compare-and-swap makes admissions a sequence whatever the
// concurrency, and a time older than tat (a caller that read the clock, then lost the race) only
// makes admission harder. interval is rounded up to a whole nanosecond, which errs the same way.
//
// Limits: a Rate above 1e9/s counts as 1e9/s; a Burst·interval beyond about 73 years is capped
// there (so a huge burst of a tiny rate admits fewer than Burst at once); a Rate below one token per
// 73 years counts as 0; a time before the bucket was made counts as that time, and one more than 73
// years after it as 73 years.
type Bucket struct {
	origin   time.Time
	mode     bucketMode
	interval int64        // nanoseconds per token, rounded up (bucketRate)
	window   int64        // Burst × interval, capped at maxBucketSpan (bucketRate)
	tat      atomic.Int64 // theoretical arrival time, ns since origin (bucketRate)
	left     atomic.Int64 // tokens left (bucketFixed)
}

// NewBucket makes a full bucket with settings s at time now. A negative or NaN Rate counts as 0, a
// negative Burst as 0.
func NewBucket(s ThrottleSettings, now time.Time) *Bucket {
	rate := s.Rate
	if !(rate > 0) { // also NaN
		rate = 0
	}
	burst := int64(max(s.Burst, 0))
	b := &Bucket{origin: now}
	switch {
	case rate == 0 && burst == 0:
		b.mode = bucketUnlimited
		return b
	case rate == 0:
		b.mode = bucketFixed
		b.left.Store(burst)
		return b
	}
	iv := math.Ceil(1e9 / rate)
	if iv > float64(maxBucketSpan) {
		b.mode = bucketFixed
		b.left.Store(burst)
		return b
	}
	b.mode = bucketRate
	b.interval = max(int64(iv), 1)
	if burst > maxBucketSpan/b.interval {
		b.window = maxBucketSpan
	} else {
		b.window = burst * b.interval
	}
	return b
}

// Allow takes a token at time now and reports whether there was one.
func (b *Bucket) Allow(now time.Time) bool {
	switch b.mode {
	case bucketUnlimited:
		return true
	case bucketFixed:
		for {
			n := b.left.Load()
			if n <= 0 {
				return false
			}
			if b.left.CompareAndSwap(n, n-1) {
				return true
			}
		}
	}
	t := min(max(int64(now.Sub(b.origin)), 0), maxBucketSpan)
	for {
		tat := b.tat.Load()
		next := max(tat, t) + b.interval
		if next-t > b.window {
			return false
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true
		}
	}
}

// ErrInvalidThrottle is wrapped by every error NewStageThrottle returns.
var ErrInvalidThrottle = errors.New("invalid throttling settings")

// StageThrottle holds the token buckets of one stage's routes. Each route has a bucket of its own,
// with the route's own settings when it has some and the stage's default route settings otherwise
// (an unlimited route has none).
//
// The buckets live in this node's memory: each Gatehouse node enforces the limits on the requests it
// serves, so a stage served by n nodes admits up to n times its limits overall.
type StageThrottle struct {
	buckets []*Bucket // by route index; nil = unlimited
}

// NewStageThrottle makes the buckets of a stage whose routes are routeKeys (as given to
// NewRouteTable), all full at time now. defaults applies to every route that routes has no entry
// for; an entry of routes, keyed by route key, replaces the defaults for that route entirely. Every
// error wraps ErrInvalidThrottle: invalid settings, or a routes entry naming no route.
func NewStageThrottle(routeKeys []string, defaults ThrottleSettings, routes map[string]ThrottleSettings, now time.Time) (*StageThrottle, error) {
	if err := defaults.Validate(); err != nil {
		return nil, fmt.Errorf("%w: default route settings: %w", ErrInvalidThrottle, err)
	}
	index := make(map[string]int, len(routeKeys))
	for i, k := range routeKeys {
		index[k] = i
	}
	for k, s := range routes {
		if _, ok := index[k]; !ok {
			return nil, fmt.Errorf("%w: route settings for %q: no such route", ErrInvalidThrottle, k)
		}
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("%w: route %q: %w", ErrInvalidThrottle, k, err)
		}
	}
	t := &StageThrottle{buckets: make([]*Bucket, len(routeKeys))}
	for i, k := range routeKeys {
		s, ok := routes[k]
		if !ok {
			s = defaults
		}
		if !s.Unlimited() {
			t.buckets[i] = NewBucket(s, now)
		}
	}
	return t, nil
}

// Allow takes a token of route (an index into the route keys given to NewStageThrottle) at time now
// and reports whether there was one. A nil StageThrottle, an unlimited route and an index out of
// range admit everything.
func (t *StageThrottle) Allow(route int, now time.Time) bool {
	if t == nil || route < 0 || route >= len(t.buckets) || t.buckets[route] == nil {
		return true
	}
	return t.buckets[route].Allow(now)
}
