package async

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of an asynchronous invocation, counted by function.
const (
	outcomeSucceeded = "succeeded"
	outcomeRetried   = "retried"
	outcomeFailed    = "failed"
	outcomeThrottled = "throttled"
)

// counters counts what happened to this node's asynchronous invocations.
type counters struct {
	mu      sync.Mutex
	byFn    map[string]map[string]uint64 // function → outcome → count
	fired   map[string]uint64            // function → schedule firings queued
	skipped map[string]uint64            // function → late firings skipped
}

func (c *counters) add(m *map[string]map[string]uint64, function, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *m == nil {
		*m = map[string]map[string]uint64{}
	}
	if (*m)[function] == nil {
		(*m)[function] = map[string]uint64{}
	}
	(*m)[function][outcome]++
}

func (c *counters) outcome(function, outcome string) { c.add(&c.byFn, function, outcome) }

func (c *counters) schedule(function string, skipped bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := &c.fired
	if skipped {
		m = &c.skipped
	}
	if *m == nil {
		*m = map[string]uint64{}
	}
	(*m)[function]++
}

// Collector returns the queue's metrics: this node's outcomes of asynchronous invocations and
// schedule firings (counters), and the stack's queues as JetStream counts them (gauges, read at
// each scrape).
func (q *Queue) Collector() prometheus.Collector { return (*collector)(q) }

type collector Queue

var (
	descOutcomes = prometheus.NewDesc("gatehouse_async_invocations_total",
		"Asynchronous invocations run by this node, by function and outcome: succeeded, retried (failed, queued again), failed (given up: to the failure destination or the dead-letter stream), throttled (put back without running).",
		[]string{"function", "outcome"}, nil)
	descFired = prometheus.NewDesc("gatehouse_schedule_firings_total",
		"Schedule firings this node queued as invocations, by function and whether a late one was skipped (missed: skip).",
		[]string{"function", "skipped"}, nil)
	descQueued      = prometheus.NewDesc("gatehouse_async_queued", "Asynchronous invocations (source=\"\") or an event source's messages (source=SUBJECT) waiting to be taken, by function (the stack's, not this node's).", []string{"function", "source"}, nil)
	descInFlight    = prometheus.NewDesc("gatehouse_async_in_flight", "Asynchronous invocations or an event source's messages taken and not settled: running, waiting for a turn or for a retry's time, by function.", []string{"function", "source"}, nil)
	descDeadLetters = prometheus.NewDesc("gatehouse_async_dead_letters", "Records in the stack's dead-letter stream, by function.", []string{"function"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOutcomes, descFired, descQueued, descInFlight, descDeadLetters} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	q := (*Queue)(c)
	q.counts.mu.Lock()
	for fn, outcomes := range q.counts.byFn {
		for o, n := range outcomes {
			ch <- prometheus.MustNewConstMetric(descOutcomes, prometheus.CounterValue, float64(n), fn, o)
		}
	}
	for fn, n := range q.counts.fired {
		ch <- prometheus.MustNewConstMetric(descFired, prometheus.CounterValue, float64(n), fn, "false")
	}
	for fn, n := range q.counts.skipped {
		ch <- prometheus.MustNewConstMetric(descFired, prometheus.CounterValue, float64(n), fn, "true")
	}
	q.counts.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	stats, err := q.Stats(ctx)
	if err != nil {
		return // the counters above are still worth a scrape
	}
	for _, s := range stats {
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(s.Queued), s.Function, s.Source)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(s.InFlight), s.Function, s.Source)
		if s.Source == "" {
			ch <- prometheus.MustNewConstMetric(descDeadLetters, prometheus.GaugeValue, float64(s.DeadLetters), s.Function)
		}
	}
}
