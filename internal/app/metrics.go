package app

import (
	"cmp"
	"encoding/json"
	"sort"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/spec"
)

// newRegistry is the node's Prometheus registry: Go runtime and process metrics, plus what the node
// adds.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// workerMetrics turns the counters workers send with their heartbeats into metrics: invocations, cold
// starts, errors and pool sizes by function and worker, and the share of invocations served warm.
// Counters restart from zero when a worker process restarts, which Prometheus reads as a counter reset.
type workerMetrics struct {
	mu     sync.Mutex
	latest map[string]map[string]bus.FunctionStats // worker → function → stats

	invocations, coldStarts, errors, shed, quarantined, instances, warmShare *prometheus.Desc
	outbound, outboundSeconds                                                *prometheus.Desc
	restarts                                                                 func() int
	ready                                                                    func() int
	restartsDesc, readyDesc                                                  *prometheus.Desc
}

func newWorkerMetrics(restarts, ready func() int) *workerMetrics {
	return &workerMetrics{
		latest:      map[string]map[string]bus.FunctionStats{},
		invocations: prometheus.NewDesc("gatehouse_invocations_total", "Invocations run by a worker, by function and its runtime.", []string{"function", "runtime", "worker"}, nil),
		coldStarts:  prometheus.NewDesc("gatehouse_cold_starts_total", "Invocations that had to start a new sandbox (a WebAssembly instance, or a runtime process), by function and its runtime.", []string{"function", "runtime", "worker"}, nil),
		errors:      prometheus.NewDesc("gatehouse_invocation_errors_total", "Invocations that failed (function error, crash, response too large), by function and its runtime.", []string{"function", "runtime", "worker"}, nil),
		shed:        prometheus.NewDesc("gatehouse_invocations_shed_total", "Invocations a worker answered without running them because it had no turn for them in time (503, or 429 for a function over its share), by function.", []string{"function", "worker"}, nil),
		quarantined: prometheus.NewDesc("gatehouse_function_quarantined", "1 while a function runs one invocation at a time in a worker, for overrunning its timeout repeatedly.", []string{"function", "worker"}, nil),
		instances:   prometheus.NewDesc("gatehouse_instances", "Sandboxes in a worker's pool, by function and state (idle or busy).", []string{"function", "worker", "state"}, nil),
		warmShare:   prometheus.NewDesc("gatehouse_warm_share", "Share of invocations served by an already started sandbox, by function, over all workers since they started.", []string{"function"}, nil),
		outbound: prometheus.NewDesc("gatehouse_outbound_requests_total", "Outbound HTTP requests of functions, by function, destination (the allowedOutboundHosts entry, or refused) and outcome (ok, error, refused, too_large, timeout).",
			[]string{"function", "host", "outcome", "worker"}, nil),
		outboundSeconds: prometheus.NewDesc("gatehouse_outbound_request_seconds_total", "Time spent in outbound HTTP requests, by function and destination.", []string{"function", "host", "worker"}, nil),
		restartsDesc:    prometheus.NewDesc("gatehouse_worker_restarts_total", "Worker processes restarted after they exited or were killed.", nil, nil),
		readyDesc:       prometheus.NewDesc("gatehouse_workers_ready", "Worker processes ready to take invocations.", nil, nil),
		restarts:        restarts,
		ready:           ready,
	}
}

func (m *workerMetrics) onHeartbeat(msg *nats.Msg) {
	var hb bus.Heartbeat
	if json.Unmarshal(msg.Data, &hb) != nil || hb.Functions == nil {
		return
	}
	m.mu.Lock()
	m.latest[hb.Worker] = hb.Functions
	m.mu.Unlock()
}

func (m *workerMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.invocations, m.coldStarts, m.errors, m.shed, m.quarantined, m.instances, m.warmShare, m.outbound, m.outboundSeconds, m.restartsDesc, m.readyDesc} {
		ch <- d
	}
}

func (m *workerMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	type total struct{ inv, cold uint64 }
	totals := map[string]*total{}
	workers := make([]string, 0, len(m.latest))
	for w := range m.latest {
		workers = append(workers, w)
	}
	sort.Strings(workers)
	for _, w := range workers {
		for fn, s := range m.latest[w] {
			runtime := cmp.Or(s.Runtime, spec.RuntimeWasm)
			ch <- prometheus.MustNewConstMetric(m.invocations, prometheus.CounterValue, float64(s.Invocations), fn, runtime, w)
			ch <- prometheus.MustNewConstMetric(m.coldStarts, prometheus.CounterValue, float64(s.ColdStarts), fn, runtime, w)
			ch <- prometheus.MustNewConstMetric(m.shed, prometheus.CounterValue, float64(s.Shed), fn, w)
			quarantined := 0.0
			if s.Quarantined {
				quarantined = 1
			}
			ch <- prometheus.MustNewConstMetric(m.quarantined, prometheus.GaugeValue, quarantined, fn, w)
			ch <- prometheus.MustNewConstMetric(m.errors, prometheus.CounterValue, float64(s.Errors), fn, runtime, w)
			ch <- prometheus.MustNewConstMetric(m.instances, prometheus.GaugeValue, float64(s.Idle), fn, w, "idle")
			ch <- prometheus.MustNewConstMetric(m.instances, prometheus.GaugeValue, float64(s.Busy), fn, w, "busy")
			for dest, o := range s.Outbound {
				for _, c := range []struct {
					outcome string
					n       uint64
				}{{"ok", o.OK}, {"error", o.Errors}, {"refused", o.Refused}, {"too_large", o.TooLarge}, {"timeout", o.Timeouts}} {
					if c.n > 0 {
						ch <- prometheus.MustNewConstMetric(m.outbound, prometheus.CounterValue, float64(c.n), fn, dest, c.outcome, w)
					}
				}
				ch <- prometheus.MustNewConstMetric(m.outboundSeconds, prometheus.CounterValue, o.Seconds, fn, dest, w)
			}
			t := totals[fn]
			if t == nil {
				t = &total{}
				totals[fn] = t
			}
			t.inv += s.Invocations
			t.cold += s.ColdStarts
		}
	}
	for fn, t := range totals {
		if t.inv > 0 {
			ch <- prometheus.MustNewConstMetric(m.warmShare, prometheus.GaugeValue, 1-float64(t.cold)/float64(t.inv), fn)
		}
	}
	ch <- prometheus.MustNewConstMetric(m.restartsDesc, prometheus.CounterValue, float64(m.restarts()))
	ch <- prometheus.MustNewConstMetric(m.readyDesc, prometheus.GaugeValue, float64(m.ready()))
}
