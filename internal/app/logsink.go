package app

import (
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/logstream"
	"gatehouse.dev/gatehouse/scheduler"
)

// newLogSink sends a worker's function output to the stack's log stream, where `gatehouse logs`
// reads it from any node.
func newLogSink(c *bus.Client, stack, worker string) func(scheduler.LogRecord) {
	pub := logstream.NewPublisher(c.Conn(), stack)
	return func(r scheduler.LogRecord) {
		pub.Publish(logstream.Record{Time: r.Time, Function: r.Function, Version: r.Version, RequestID: r.RequestID,
			Stream: r.Stream, Worker: worker, Message: r.Message})
	}
}
