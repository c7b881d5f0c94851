// Package loadtest is Gatehouse's load generator. It talks to a running Gatehouse only over its public
// HTTP API, only on loopback addresses, and every run is bounded in time and optionally in count.
package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Limits and defaults of a run.
const (
	DefaultDuration    = 10 * time.Second
	MaxDuration        = 10 * time.Minute
	DefaultMaxInFlight = 10000
	DefaultTimeout     = 30 * time.Second
	// drainWait is how long requests still in flight when the run ends may take to answer before they
	// are abandoned.
	drainWait = 2 * time.Second
)

// Config describes one HTTP load run. Concurrency > 0 with Rate == 0 is a closed loop; Rate > 0 is an
// open loop.
type Config struct {
	Target      string
	Method      string
	Header      http.Header
	Body        []byte
	Concurrency int           // closed loop: number of workers
	Rate        float64       // open loop: requests per second
	MaxInFlight int           // open loop: bound on outstanding requests
	Duration    time.Duration // run length (always bounded, at most MaxDuration)
	Requests    int64         // if > 0, stop after this many requests
	Timeout     time.Duration // per-request timeout
	// Progress, when not nil, receives a progress line once a second; ProgressInPlace rewrites one
	// terminal line instead of appending lines.
	Progress        io.Writer
	ProgressInPlace bool
}

func (c *Config) normalize() error {
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Duration < 0 || c.Duration > MaxDuration {
		return fmt.Errorf("duration %s is out of range (0, %s]", c.Duration, MaxDuration)
	}
	if c.Requests < 0 {
		return fmt.Errorf("requests must not be negative")
	}
	if c.Rate < 0 {
		return fmt.Errorf("rate must not be negative")
	}
	if c.Rate == 0 && c.Concurrency <= 0 {
		return fmt.Errorf("concurrency must be at least 1")
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return nil
}

// Mode returns "closed" or "open".
func (c *Config) Mode() string {
	if c.Rate > 0 {
		return "open"
	}
	return "closed"
}

// Result is the outcome of a run. Latency is measured from each request's intended send time in the
// open loop (correcting coordinated omission) and from its actual send time in the closed loop; it
// covers every request that got a response, whatever its status.
type Result struct {
	Mode     string
	Target   string
	Elapsed  time.Duration
	Sent     int64            // requests sent
	Answered int64            // requests that got a response (any status)
	Statuses map[int]int64    // responses by status code
	Errors   map[string]int64 // requests without a response, by kind
	// Late counts open-loop requests that could not be sent on time because MaxInFlight requests were
	// outstanding; they were sent as soon as a slot freed up.
	Late int64
	// Abandoned counts requests still unanswered drainWait after the run ended.
	Abandoned int64
	Latency   *Hist
	// Service is the latency from the actual send time (equal to Latency in the closed loop).
	Service *Hist
	// PerSecond holds the latencies of the requests sent (or due) in each second of the run.
	PerSecond []*Hist
}

// Throughput is answered requests per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Answered) / r.Elapsed.Seconds()
}

// ErrorCount is the number of requests that failed: no response, or a 4xx/5xx status.
func (r *Result) ErrorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	for s, c := range r.Statuses {
		if s >= 400 {
			n += c
		}
	}
	return n + r.Abandoned
}

type recorder struct {
	mu     sync.Mutex
	start  time.Time
	res    *Result
	window *Hist // latencies of the current progress interval
}

func (r *recorder) record(due, sent, done time.Time, status int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.res.Errors[errorKind(err)]++
		return
	}
	r.res.Answered++
	r.res.Statuses[status]++
	lat := done.Sub(due)
	r.res.Latency.Record(lat)
	r.res.Service.Record(done.Sub(sent))
	r.window.Record(lat)
	sec := int(due.Sub(r.start) / time.Second)
	if sec < 0 {
		sec = 0
	}
	for len(r.res.PerSecond) <= sec {
		r.res.PerSecond = append(r.res.PerSecond, NewHist(2))
	}
	r.res.PerSecond[sec].Record(lat)
}

// errorKind names the kind of a transport error for the summary.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EMFILE):
		return "out of local ports or files"
	case strings.Contains(err.Error(), "non-loopback"):
		return "non-loopback address"
	}
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &tlsErr) {
		return "tls"
	}
	return "other"
}

func newClient(cfg *Config) *http.Client {
	idle := cfg.Concurrency
	if cfg.Rate > 0 {
		idle = min(cfg.MaxInFlight, max(64, int(cfg.Rate)))
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackOnly}
	tr := &http.Transport{
		Proxy:               nil, // never route load through a proxy from the environment
		DialContext:         dialer.DialContext,
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // loopback only; local certificates
	}
	return &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		// Redirects are answers, not new targets.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Run sends load as cfg describes and returns the result once the run is over. ctx cancels the run
// early (the result then covers what was sent).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	u, err := CheckTarget(ctx, cfg.Target)
	if err != nil {
		return nil, err
	}
	target := u.String()
	client := newClient(&cfg)
	defer client.CloseIdleConnections()

	res := &Result{
		Mode: cfg.Mode(), Target: target,
		Statuses: map[int]int64{}, Errors: map[string]int64{},
		Latency: NewHist(3), Service: NewHist(3),
	}
	start := time.Now()
	rec := &recorder{start: start, res: res, window: NewHist(2)}

	// stop ends sending; hard cancels requests still in flight drainWait later.
	stopCtx, stop := context.WithDeadline(ctx, start.Add(cfg.Duration))
	defer stop()
	hardCtx, hard := context.WithCancel(context.WithoutCancel(ctx))
	defer hard()
	go func() {
		<-stopCtx.Done()
		select {
		case <-time.After(drainWait):
		case <-ctx.Done():
		}
		hard()
	}()

	var sent, abandoned atomic.Int64
	send := func(due time.Time) {
		req, err := http.NewRequestWithContext(hardCtx, cfg.Method, target, bytes.NewReader(cfg.Body))
		if err != nil {
			rec.record(due, due, due, 0, err)
			return
		}
		for k, vs := range cfg.Header {
			for _, v := range vs {
				if strings.EqualFold(k, "Host") {
					req.Host = v
				} else {
					req.Header.Add(k, v)
				}
			}
		}
		s := time.Now()
		if due.IsZero() {
			due = s
		}
		sent.Add(1)
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done := time.Now()
		if err != nil && hardCtx.Err() != nil && stopCtx.Err() != nil {
			abandoned.Add(1) // still in flight when the run ended
			return
		}
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		rec.record(due, s, done, status, err)
	}

	progressDone := make(chan struct{})
	if cfg.Progress != nil {
		go progress(cfg.Progress, cfg.ProgressInPlace, rec, &sent, stopCtx, progressDone)
	} else {
		close(progressDone)
	}

	// claim reports whether another request may be sent under the count bound.
	var claimed atomic.Int64
	claim := func() bool { return cfg.Requests == 0 || claimed.Add(1) <= cfg.Requests }

	var wg sync.WaitGroup
	if cfg.Rate == 0 {
		for range cfg.Concurrency {
			wg.Go(func() {
				for stopCtx.Err() == nil && claim() {
					send(time.Time{})
				}
			})
		}
	} else {
		slots := make(chan struct{}, cfg.MaxInFlight)
		interval := time.Duration(float64(time.Second) / cfg.Rate)
		timer := time.NewTimer(0)
		defer timer.Stop()
	schedule:
		for i := int64(0); ; i++ {
			due := start.Add(time.Duration(i) * interval)
			if !due.Before(start.Add(cfg.Duration)) || !claim() {
				break
			}
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-stopCtx.Done():
					break schedule
				}
			}
			select {
			case slots <- struct{}{}:
			default:
				res.Late++
				select {
				case slots <- struct{}{}:
				case <-stopCtx.Done():
					break schedule
				}
			}
			wg.Go(func() {
				defer func() { <-slots }()
				send(due)
			})
		}
	}
	wg.Wait()
	stop()
	<-progressDone

	rec.mu.Lock()
	defer rec.mu.Unlock()
	res.Elapsed = time.Since(start)
	res.Sent = sent.Load()
	res.Abandoned = abandoned.Load()
	return res, nil
}

func progress(w io.Writer, inPlace bool, rec *recorder, sent *atomic.Int64, stopCtx context.Context, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := int64(0)
	lastAt := rec.start
	for {
		select {
		case <-stopCtx.Done():
			if inPlace {
				fmt.Fprintln(w)
			}
			return
		case now := <-tick.C:
			rec.mu.Lock()
			answered := rec.res.Answered
			var errs int64
			for _, c := range rec.res.Errors {
				errs += c
			}
			done := answered + errs
			for s, c := range rec.res.Statuses {
				if s >= 400 {
					errs += c
				}
			}
			p99 := rec.res.Latency.Quantile(0.99)
			win := rec.window.Quantile(0.99)
			rec.window = NewHist(2)
			rec.mu.Unlock()
			rate := float64(done-last) / now.Sub(lastAt).Seconds()
			last, lastAt = done, now
			line := fmt.Sprintf("%6s  requests %d  rate %.0f/s  p99 %s (last second %s)  errors %d",
				now.Sub(rec.start).Truncate(time.Second), sent.Load(), rate, FormatDuration(p99), FormatDuration(win), errs)
			if inPlace {
				fmt.Fprintf(w, "\r%s\x1b[K", line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
	}
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func sortedKeys[K int | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
