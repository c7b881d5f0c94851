package gateway

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var bucketEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// admit calls b.Allow n times at now and returns how many were admitted.
func admit(b *Bucket, now time.Time, n int) int {
	got := 0
	for range n {
		if b.Allow(now) {
			got++
		}
	}
	return got
}

func TestBucketBurstThenRefused(t *testing.T) {
	b := NewBucket(ThrottleSettings{Rate: 10, Burst: 5}, bucketEpoch)
	if got := admit(b, bucketEpoch, 20); got != 5 {
		t.Fatalf("admitted %d of 20 at once, want the burst 5", got)
	}
	if b.Allow(bucketEpoch.Add(99 * time.Millisecond)) {
		t.Fatal("admitted 99ms later at 10/s, want refused")
	}
}

func TestBucketRefill(t *testing.T) {
	b := NewBucket(ThrottleSettings{Rate: 10, Burst: 5}, bucketEpoch)
	admit(b, bucketEpoch, 5)
	now := bucketEpoch.Add(100 * time.Millisecond)
	if got := admit(b, now, 3); got != 1 {
		t.Fatalf("100ms after emptying at 10/s: admitted %d, want 1", got)
	}
	now = now.Add(250 * time.Millisecond) // 2.5 tokens
	if got := admit(b, now, 5); got != 2 {
		t.Fatalf("250ms later: admitted %d, want 2", got)
	}
	now = now.Add(50 * time.Millisecond) // the half token left plus half a token
	if got := admit(b, now, 5); got != 1 {
		t.Fatalf("50ms later: admitted %d, want 1", got)
	}
	now = now.Add(time.Hour) // refills to the burst, no more
	if got := admit(b, now, 10); got != 5 {
		t.Fatalf("an hour later: admitted %d, want the burst 5", got)
	}
}

func TestBucketFractionalRate(t *testing.T) {
	b := NewBucket(ThrottleSettings{Rate: 0.5, Burst: 1}, bucketEpoch)
	if !b.Allow(bucketEpoch) {
		t.Fatal("first request refused")
	}
	for _, d := range []time.Duration{0, time.Second, 1999 * time.Millisecond} {
		if b.Allow(bucketEpoch.Add(d)) {
			t.Fatalf("admitted at +%v with 0.5/s, want refused until +2s", d)
		}
	}
	if !b.Allow(bucketEpoch.Add(2 * time.Second)) {
		t.Fatal("refused at +2s with 0.5/s")
	}
	if b.Allow(bucketEpoch.Add(3 * time.Second)) {
		t.Fatal("admitted at +3s, want refused until +4s")
	}
	if !b.Allow(bucketEpoch.Add(4 * time.Second)) {
		t.Fatal("refused at +4s")
	}
}

func TestBucketSpecialSettings(t *testing.T) {
	later := bucketEpoch.Add(1000 * time.Hour)
	cases := []struct {
		name       string
		s          ThrottleSettings
		now, after int // admitted of 100 at the start, and of 100 much later
	}{
		{"unlimited", ThrottleSettings{}, 100, 100},
		{"rate 0 burst 3", ThrottleSettings{Burst: 3}, 3, 0},
		{"rate 5 burst 0", ThrottleSettings{Rate: 5}, 0, 0},
		{"negative", ThrottleSettings{Rate: -1, Burst: -1}, 100, 100},
		{"NaN rate", ThrottleSettings{Rate: math.NaN(), Burst: 2}, 2, 0},
		{"tiny rate", ThrottleSettings{Rate: 1e-12, Burst: 2}, 2, 0},
		{"huge rate", ThrottleSettings{Rate: math.Inf(1), Burst: 2}, 2, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBucket(c.s, bucketEpoch)
			if got := admit(b, bucketEpoch, 100); got != c.now {
				t.Errorf("admitted %d at once, want %d", got, c.now)
			}
			got := 0
			for i := range 100 { // 100 requests 1ms apart
				if b.Allow(later.Add(time.Duration(i) * time.Millisecond)) {
					got++
				}
			}
			if got != c.after {
				t.Errorf("admitted %d later, want %d", got, c.after)
			}
		})
	}
}

func TestBucketClockBeforeOrigin(t *testing.T) {
	b := NewBucket(ThrottleSettings{Rate: 1, Burst: 2}, bucketEpoch)
	if got := admit(b, bucketEpoch.Add(-time.Hour), 5); got != 2 {
		t.Fatalf("admitted %d before the origin, want 2", got)
	}
	if got := admit(b, bucketEpoch.Add(time.Second), 5); got != 1 {
		t.Fatalf("admitted %d one second in, want 1", got)
	}
	// Far-future times are capped, and nothing overflows.
	far := time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := admit(b, far, 5); got != 2 {
		t.Fatalf("admitted %d far in the future, want 2", got)
	}
}

func TestBucketConcurrentFixedClock(t *testing.T) {
	const goroutines, tries, burst = 64, 100, 1000
	for i := range 40 {
		s := ThrottleSettings{Rate: 100, Burst: burst}
		if i%2 == 1 {
			s.Rate = 0
		}
		b := NewBucket(s, bucketEpoch)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range goroutines {
			wg.Go(func() {
				<-start
				for range tries {
					if b.Allow(bucketEpoch) {
						admitted.Add(1)
					}
				}
			})
		}
		close(start)
		wg.Wait()
		if got := admitted.Load(); got != burst {
			t.Errorf("%+v: %d goroutines × %d tries admitted %d, want exactly %d", s, goroutines, tries, got, burst)
		}
	}
}

// TestBucketConcurrentMovingClock has 64 goroutines share a clock that they advance as they go, each
// reading it before calling Allow (so calls arrive out of time order), and checks the bound
// admitted ≤ burst + rate × elapsed.
func TestBucketConcurrentMovingClock(t *testing.T) {
	const goroutines, tries = 64, 2000
	s := ThrottleSettings{Rate: 3000, Burst: 50}
	b := NewBucket(s, bucketEpoch)
	var clock, admitted atomic.Int64 // clock in ns since bucketEpoch
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range tries {
				now := clock.Add(r.Int64N(20_000)) // up to 20µs per step
				if b.Allow(bucketEpoch.Add(time.Duration(now))) {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Duration(clock.Load()).Seconds()
	limit := float64(s.Burst) + s.Rate*elapsed
	if got := float64(admitted.Load()); got > limit {
		t.Fatalf("admitted %v in %.4fs, over the bound %v", got, elapsed, limit)
	}
	// Requests came far faster than the rate, so the bucket must have admitted close to the bound.
	if got := float64(admitted.Load()); got < limit-3 {
		t.Fatalf("admitted %v in %.4fs, want about %v", got, elapsed, limit)
	}
}

// refBucket is a plain token bucket in integer arithmetic: credit in nanoseconds, one token per
// interval nanoseconds, capacity burst tokens. For rates that divide 1e9 it is the exact model of
// Bucket.
type refBucket struct {
	interval, credit, capacity, last int64
}

func newRefBucket(rate float64, burst int) *refBucket {
	iv := int64(1e9 / rate)
	return &refBucket{interval: iv, credit: int64(burst) * iv, capacity: int64(burst) * iv}
}

func (r *refBucket) allow(t int64) bool {
	if t > r.last {
		r.credit = min(r.capacity, r.credit+(t-r.last))
		r.last = t
	}
	if r.credit < r.interval {
		return false
	}
	r.credit -= r.interval
	return true
}

// floatBucket is the textbook token bucket in floating point.
type floatBucket struct {
	rate, tokens, capacity float64
	last                   int64
}

func (f *floatBucket) allow(t int64) bool {
	if t > f.last {
		f.tokens = math.Min(f.capacity, f.tokens+f.rate*float64(t-f.last)/1e9)
		f.last = t
	}
	if f.tokens < 1 {
		return false
	}
	f.tokens--
	return true
}

// randomSchedule returns n increasing request times in ns: bursts of simultaneous requests and gaps
// of up to a few token intervals, some landing exactly on token boundaries.
func randomSchedule(r *rand.Rand, n int, rate float64) []int64 {
	iv := int64(1e9 / rate)
	out := make([]int64, n)
	var t int64
	for i := range out {
		switch r.IntN(4) {
		case 0: // same instant
		case 1:
			t += iv * r.Int64N(3) // whole intervals
		case 2:
			t += r.Int64N(iv) + 1
		default:
			t += r.Int64N(4 * iv)
		}
		out[i] = t
	}
	return out
}

func TestBucketMatchesReferenceModel(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 7))
	for trial := range 300 {
		rate := []float64{0.5, 1, 2, 4, 10, 40, 1000, 10000}[r.IntN(8)]
		burst := r.IntN(20)
		if burst == 0 && trial%2 == 0 {
			burst = 1 // fewer of the degenerate burst-0 buckets
		}
		b := NewBucket(ThrottleSettings{Rate: rate, Burst: burst}, bucketEpoch)
		ref := newRefBucket(rate, burst)
		for i, at := range randomSchedule(r, 500, rate) {
			got, want := b.Allow(bucketEpoch.Add(time.Duration(at))), ref.allow(at)
			if got != want {
				t.Fatalf("trial %d rate %v burst %d: request %d at %v: Allow = %v, reference %v",
					trial, rate, burst, i, time.Duration(at), got, want)
			}
		}
	}
}

// TestBucketMatchesFloatModel covers rates whose interval is not a whole nanosecond: Bucket rounds
// the interval up, so it may fall behind the float model by a token around a boundary, never get
// ahead of it, and never exceed burst + rate × elapsed.
func TestBucketMatchesFloatModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		rate := []float64{0.3, 3, 7.3, 333.3, 1e9 / 7, 9999.9}[r.IntN(6)]
		burst := 1 + r.IntN(20)
		b := NewBucket(ThrottleSettings{Rate: rate, Burst: burst}, bucketEpoch)
		f := &floatBucket{rate: rate, tokens: float64(burst), capacity: float64(burst)}
		var got, want int
		for i, at := range randomSchedule(r, 500, rate) {
			if b.Allow(bucketEpoch.Add(time.Duration(at))) {
				got++
			}
			if f.allow(at) {
				want++
			}
			if got > want+1 || got < want-1 {
				t.Fatalf("trial %d rate %v burst %d: after request %d at %v: admitted %d, float model %d",
					trial, rate, burst, i, time.Duration(at), got, want)
			}
			if limit := float64(burst) + rate*float64(at)/1e9; float64(got) > limit+1e-9 {
				t.Fatalf("trial %d: admitted %d by %v, over the bound %v", trial, got, time.Duration(at), limit)
			}
		}
	}
}

// TestBucketBoundaryNoOverAdmission sends requests exactly on the nanosecond below each token's
// arrival when the interval is not a whole nanosecond: none may be admitted early.
func TestBucketBoundaryNoOverAdmission(t *testing.T) {
	for _, rate := range []float64{3, 7, 1e9 / 7, 0.3} {
		b := NewBucket(ThrottleSettings{Rate: rate, Burst: 1}, bucketEpoch)
		got := admit(b, bucketEpoch, 1)
		for k := 1; k <= 2000; k++ {
			at := int64(math.Floor(float64(k) * 1e9 / rate))
			if math.Floor(float64(k)*1e9/rate) == float64(k)*1e9/rate {
				at-- // keep strictly before the token arrives
			}
			if b.Allow(bucketEpoch.Add(time.Duration(at))) {
				got++
			}
			if limit := 1 + rate*float64(at)/1e9; float64(got) > limit {
				t.Fatalf("rate %v: admitted %d by %dns, over the bound %v", rate, got, at, limit)
			}
		}
	}
}

func TestThrottleSettingsValidate(t *testing.T) {
	for _, s := range []ThrottleSettings{{}, {Rate: 0.5, Burst: 1}, {Burst: 10}, {Rate: 10000, Burst: 5000}} {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	for _, s := range []ThrottleSettings{{Rate: -1}, {Burst: -1}, {Rate: math.NaN()}, {Rate: math.Inf(1)}} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}

func TestStageThrottle(t *testing.T) {
	keys := []string{"GET /pets", "POST /pets", "$default", "GET /free"}
	st, err := NewStageThrottle(keys, ThrottleSettings{Rate: 1, Burst: 2}, map[string]ThrottleSettings{
		"POST /pets": {Rate: 1, Burst: 1},
		"GET /free":  {},
	}, bucketEpoch)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{2, 1, 2, 50} // the defaults apply to each route on its own
	for i, k := range keys {
		got := 0
		for range 50 {
			if st.Allow(i, bucketEpoch) {
				got++
			}
		}
		if got != want[i] {
			t.Errorf("%s: admitted %d, want %d", k, got, want[i])
		}
	}
	if !st.Allow(99, bucketEpoch) || !st.Allow(-1, bucketEpoch) || !(*StageThrottle)(nil).Allow(0, bucketEpoch) {
		t.Error("out-of-range index or nil throttle refused")
	}

	// Conformance: stage rate 1, burst 1: the second of two back-to-back requests is refused.
	st, err = NewStageThrottle([]string{"$default"}, ThrottleSettings{Rate: 1, Burst: 1}, nil, bucketEpoch)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Allow(0, bucketEpoch) || st.Allow(0, bucketEpoch.Add(time.Millisecond)) {
		t.Error("rate 1 burst 1: want the first request admitted and the second refused")
	}
}

func TestStageThrottleErrors(t *testing.T) {
	keys := []string{"GET /pets"}
	for name, c := range map[string]struct {
		def    ThrottleSettings
		routes map[string]ThrottleSettings
	}{
		"bad default": {ThrottleSettings{Rate: -1}, nil},
		"bad route":   {ThrottleSettings{}, map[string]ThrottleSettings{"GET /pets": {Burst: -2}}},
		"no route":    {ThrottleSettings{}, map[string]ThrottleSettings{"GET /cats": {Burst: 2}}},
	} {
		if _, err := NewStageThrottle(keys, c.def, c.routes, bucketEpoch); !errors.Is(err, ErrInvalidThrottle) {
			t.Errorf("%s: error %v, want ErrInvalidThrottle", name, err)
		}
	}
}

// mutexBucket is the token bucket with a mutex, for comparison in the benchmarks.
type mutexBucket struct {
	mu sync.Mutex
	f  floatBucket
	t0 time.Time
}

func (m *mutexBucket) Allow(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.f.allow(int64(now.Sub(m.t0)))
}

// benchSettings admit about half the requests of a benchmark goroutine (whose clock advances 100ns a
// call) and refuse the rest. The benchmarks pass synthetic times: time.Now would dominate the cost
// (it takes longer than Allow on some machines).
var benchSettings = ThrottleSettings{Rate: 5e6, Burst: 1000}

func BenchmarkBucketAllow(b *testing.B) {
	t0 := time.Now()
	bk := NewBucket(benchSettings, t0)
	b.RunParallel(func(pb *testing.PB) {
		now := t0
		for pb.Next() {
			now = now.Add(100)
			bk.Allow(now)
		}
	})
}

func BenchmarkBucketAllowMutex(b *testing.B) {
	t0 := time.Now()
	s := benchSettings
	m := &mutexBucket{t0: t0, f: floatBucket{rate: s.Rate, tokens: float64(s.Burst), capacity: float64(s.Burst)}}
	b.RunParallel(func(pb *testing.PB) {
		now := t0
		for pb.Next() {
			now = now.Add(100)
			m.Allow(now)
		}
	})
}

// BenchmarkBucketAllowRefused measures a flood against an empty bucket: refusals only read.
func BenchmarkBucketAllowRefused(b *testing.B) {
	t0 := time.Now()
	bk := NewBucket(ThrottleSettings{Rate: 1e-3, Burst: 1}, t0)
	bk.Allow(t0)
	b.RunParallel(func(pb *testing.PB) {
		now := t0
		for pb.Next() {
			now = now.Add(100)
			bk.Allow(now)
		}
	})
}

func BenchmarkBucketAllowRefusedMutex(b *testing.B) {
	t0 := time.Now()
	m := &mutexBucket{t0: t0, f: floatBucket{rate: 1e-3, tokens: 0, capacity: 1}}
	b.RunParallel(func(pb *testing.PB) {
		now := t0
		for pb.Next() {
			now = now.Add(100)
			m.Allow(now)
		}
	})
}
