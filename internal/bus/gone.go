package bus

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
)

// WorkerGone reports a worker process that exited: which invocations had entered their guest code
// (Started: they may have run, so their callers get an error, never a second run) and which of those
// had overrun their function's timeout (the reason it was killed). An invocation the worker had
// received but not entered is safe to run elsewhere.
//
// Answers holds the outcomes the worker had computed for recent invocations with small responses: a
// caller whose reply was lost with the worker gets its answer from here.
type WorkerGone struct {
	Worker  string   `json:"worker"`
	Started []string `json:"started,omitempty"`
	// Effected lists the invocations that made host calls with effects outside their sandbox (a post,
	// a key-value write): running them again could repeat those, so their callers get an error.
	Effected []string `json:"effected,omitempty"`
	Overdue  []string `json:"overdue,omitempty"`
	Answers  []Answer `json:"answers,omitempty"`
}

// Answer is an invocation's outcome: its response, or the error code it failed with.
type Answer struct {
	RequestID string `json:"requestId"`
	Code      Code   `json:"code,omitempty"`
	Body      []byte `json:"body,omitempty"`
}

// PublishWorkerGone tells every gateway that a worker is gone.
func (c *Client) PublishWorkerGone(g WorkerGone) error {
	b, err := json.Marshal(g)
	if err != nil {
		return err
	}
	if err := c.nc.Publish(c.subj.WorkerGone(), b); err != nil {
		return fmt.Errorf("bus: publishing worker gone: %w", err)
	}
	return c.nc.Flush()
}

// SubscribeWorkerGone calls fn for every worker-gone report.
func (c *Client) SubscribeWorkerGone(fn func(WorkerGone)) (*nats.Subscription, error) {
	sub, err := c.nc.Subscribe(c.subj.WorkerGone(), func(m *nats.Msg) {
		var g WorkerGone
		if json.Unmarshal(m.Data, &g) == nil {
			fn(g)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("bus: subscribing to worker reports: %w", err)
	}
	return sub, c.nc.Flush()
}
