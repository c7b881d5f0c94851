package gateway

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus collectors. A nil *metrics records nothing.
type metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	integration *prometheus.HistogramVec
	throttled   *prometheus.CounterVec
	failures    *prometheus.CounterVec
	wsOpen      prometheus.Gauge
	cache       *prometheus.CounterVec
}

// latencyBuckets span 100 µs to 30 s.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total",
			Help: "HTTP requests answered by the gateway, by API, route key and status code.",
		}, []string{"api", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_http_request_duration_seconds",
			Help:    "Time from receiving a request to writing its response, by API and route key.",
			Buckets: latencyBuckets,
		}, []string{"api", "route"}),
		integration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_integration_duration_seconds",
			Help:    "Time spent invoking the route's function (bus, queueing and the function itself), by API and route key.",
			Buckets: latencyBuckets,
		}, []string{"api", "route"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_throttled_total",
			Help: "Invocations refused with 429: the function was at its maxConcurrency, over its share of the workers, or in quarantine with its one place taken.",
		}, []string{"function"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_invocation_failures_total",
			Help: "Invocations that did not produce a usable response, as the gateway saw them, by function and reason: function_error (an error, panic or trap), timeout, response_too_large, malformed_response, integration_timeout, throttled, shed, no_workers, worker_lost, internal.",
		}, []string{"function", "reason"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_cache_requests_total",
			Help: "Requests to REST API routes that cache, by API, stage and result: hit (answered from the stage cache), miss, or invalidated (a client's Cache-Control: max-age=0 that may refresh the entry).",
		}, []string{"api", "stage", "result"}),
		wsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_websocket_connections",
			Help: "WebSocket connections open on this node.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.integration, m.throttled, m.failures, m.wsOpen, m.cache} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observeRequest(api, route string, status int, took time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(api, route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(api, route).Observe(took.Seconds())
}

func (m *metrics) observeIntegration(api, route string, took time.Duration) {
	if m == nil {
		return
	}
	m.integration.WithLabelValues(api, route).Observe(took.Seconds())
}

// failed counts a failed invocation of function with the reason err gives.
func (m *metrics) failed(function string, err error) {
	if m == nil {
		return
	}
	m.failures.WithLabelValues(function, failureReason(err)).Inc()
}

// cacheResult counts a request to a route that caches.
func (m *metrics) cacheResult(api, stage, result string) {
	if m == nil {
		return
	}
	m.cache.WithLabelValues(api, stage, result).Inc()
}

func (m *metrics) throttle(function string) {
	if m == nil {
		return
	}
	m.throttled.WithLabelValues(function).Inc()
}

// wsConnections adds delta to the open WebSocket connections.
func (m *metrics) wsConnections(delta float64) {
	if m == nil {
		return
	}
	m.wsOpen.Add(delta)
}
