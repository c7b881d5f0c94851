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
type WorkerGone struct {
	Worker  string   `json:"worker"`
	Started []string `json:"started,omitempty"`
	Overdue []string `json:"overdue,omitempty"`
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
