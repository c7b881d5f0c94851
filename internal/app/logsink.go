package app

import (
	"context"
	"sync/atomic"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/logstream"
	"gatehouse.dev/gatehouse/scheduler"
)

// newLogSink sends a worker's function output to the stack's log stream, where `gatehouse logs`
// reads it from any node.
func newLogSink(c *bus.Client, stack string, worker *atomic.Pointer[string]) func(scheduler.LogRecord) {
	pub := logstream.NewPublisher(c.Conn(), stack)
	return func(r scheduler.LogRecord) {
		pub.Publish(logstream.Record{Time: r.Time, Function: r.Function, Version: r.Version, RequestID: r.RequestID, TraceID: r.TraceID,
			Stream: r.Stream, Worker: *worker.Load(), Message: r.Message})
	}
}

// adminLogs serves the admin API's function logs from the log stream.
type adminLogs struct{ r *logstream.Reader }

func toAdminRecord(r logstream.Record) adminapi.LogRecord {
	return adminapi.LogRecord{Time: r.Time, Function: r.Function, Version: r.Version, RequestID: r.RequestID, TraceID: r.TraceID,
		Stream: r.Stream, Worker: r.Worker, Message: r.Message, Seq: r.Seq}
}

func (l adminLogs) Recent(ctx context.Context, function string, limit int) ([]adminapi.LogRecord, error) {
	recs, err := l.r.Recent(ctx, function, limit)
	if err != nil {
		return nil, err
	}
	out := make([]adminapi.LogRecord, len(recs))
	for i, r := range recs {
		out[i] = toAdminRecord(r)
	}
	return out, nil
}

func (l adminLogs) Follow(ctx context.Context, function string, each func(adminapi.LogRecord) error) error {
	return l.r.Follow(ctx, function, func(r logstream.Record) error { return each(toAdminRecord(r)) })
}
