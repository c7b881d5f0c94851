package outbound

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a call, the outcome label of gatehouse_outbound_requests_total.
const (
	outcomeOK       = "ok"        // a response was read whole, whatever its status
	outcomeError    = "error"     // the call failed: DNS, connection, TLS, protocol, too many redirects
	outcomeRefused  = "refused"   // not sent (malformed, or not allowed), or a redirect not followed
	outcomeTooLarge = "too_large" // the response was over the limit
	outcomeTimeout  = "timeout"   // the context's deadline came first (or the context was cancelled)
)

// refusedHost is the host label of refused calls: the label names allow-list entries only, so that a
// function cannot grow the label set by calling made-up hosts.
const refusedHost = "refused"

// metrics are the client's Prometheus collectors. A nil *metrics records nothing.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// durationBuckets span 1 ms to 60 s.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_outbound_requests_total",
			Help: "Outbound HTTP calls made by functions, by function, allow-list entry (host, or \"refused\" for calls not made) and outcome: ok, error, refused, too_large, timeout.",
		}, []string{"function", "host", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_outbound_request_duration_seconds",
			Help:    "Time an outbound HTTP call took, redirects and reading the response included, by function and allow-list entry.",
			Buckets: durationBuckets,
		}, []string{"function", "host"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe records one call. host is the matched entry, "" when none matched (the call was refused
// before it was sent); the duration is recorded only for calls that matched an entry.
func (m *metrics) observe(function, host, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	if host == "" || outcome == outcomeRefused {
		m.requests.WithLabelValues(function, refusedHost, outcomeRefused).Inc()
	} else {
		m.requests.WithLabelValues(function, host, outcome).Inc()
	}
	if host != "" {
		m.duration.WithLabelValues(function, host).Observe(took.Seconds())
	}
}
