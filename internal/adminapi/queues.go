package adminapi

import (
	"context"
	"net/http"
	"time"
)

// Queued is the answer of an asynchronous invocation: 202, once the event is stored.
type Queued struct {
	RequestID string `json:"requestId"`
}

// QueueList is the answer of GET /admin/v1/queues.
type QueueList struct {
	Queues []QueueStats `json:"queues"`
}

// QueueStats is one function's queue of asynchronous invocations, as JetStream counts it.
type QueueStats struct {
	Function string `json:"function"`
	// Source is, for an event source's queue, its subject; "" for the function's asynchronous
	// invocations (whose row also counts its dead letters, event sources' included).
	Source string `json:"source,omitempty"`
	// Queued counts the events waiting to be taken.
	Queued uint64 `json:"queued"`
	// InFlight counts the events taken and not yet settled: running, waiting for a turn, or put
	// back until a retry's time.
	InFlight int `json:"inFlight"`
	// Redelivered counts the events among them given out more than once.
	Redelivered int `json:"redelivered"`
	// DeadLetters counts the function's records in the stack's dead-letter stream.
	DeadLetters uint64 `json:"deadLetters"`
}

// Redriven is the answer of POST /admin/v1/queues/{function}/redrive.
type Redriven struct {
	Function string `json:"function"`
	// Queued counts the dead letters queued again.
	Queued int `json:"queued"`
}

// Published is the answer of POST /admin/v1/events/{subject}: the message is stored.
type Published struct {
	Subject string `json:"subject"`
	// Sequence is the message's number in the stack's event stream.
	Sequence uint64 `json:"sequence"`
}

// ScheduleList is the answer of GET /admin/v1/schedules.
type ScheduleList struct {
	Schedules []Schedule `json:"schedules"`
}

// Schedule is one of the stack's stored schedules.
type Schedule struct {
	Function   string `json:"function"`
	Expression string `json:"expression"`
	TimeZone   string `json:"timezone,omitempty"`
	Missed     string `json:"missed"`
	// Next is when it fires next, as its last firing announced; zero before its first firing.
	Next time.Time `json:"next,omitzero"`
	// LastFired is when it last fired; zero before its first firing.
	LastFired time.Time `json:"lastFired,omitzero"`
}

// Schedules lists the stack's stored schedules.
func (c *Client) Schedules(ctx context.Context) ([]Schedule, error) {
	var out ScheduleList
	if _, err := c.DoJSON(ctx, http.MethodGet, "/admin/v1/schedules", nil, &out); err != nil {
		return nil, err
	}
	return out.Schedules, nil
}
