package scheduler

import (
	"bytes"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Limits on a guest's output, per invocation.
const (
	// maxLogLine bounds one record; a longer line is split.
	maxLogLine = 8 << 10
	// maxLogBytes bounds what one invocation may log; the rest is counted and dropped.
	maxLogBytes = 256 << 10
)

// invocationLog turns one instance's stdout and stderr into structured records, one per line, tagged
// with the function, its version and the request id of the invocation that wrote them. An instance runs
// one invocation at a time, so records of concurrent invocations never mix.
type invocationLog struct {
	log      *slog.Logger
	sink     func(LogRecord)
	function string
	version  int
	label    string

	mu        sync.Mutex
	requestID string
	written   int
	dropped   int
	partial   map[string][]byte
	// The invocation's START line is written (and made) only before its first line of output (or
	// its failure, or its REPORT when it cold-started): a warm invocation that writes nothing and
	// succeeds writes no platform lines, which keeps the log stream off the busiest path.
	startAt time.Time
	logged  bool   // the START line was written
	traceID string // the invocation's trace id, "" for none
}

func newInvocationLog(log *slog.Logger, sink func(LogRecord), function string, version int) *invocationLog {
	label := "$LATEST"
	if version != 0 {
		label = strconv.Itoa(version)
	}
	return &invocationLog{log: log, sink: sink, function: function, version: version, label: label, partial: map[string][]byte{}}
}

// begin starts the output of one invocation, which began at at; its records carry the trace id of
// its W3C traceparent ("" for none).
func (l *invocationLog) begin(requestID, traceparent string, at time.Time) {
	traceID := ""
	if len(traceparent) == 55 {
		traceID = traceparent[3:35]
	}
	l.mu.Lock()
	l.requestID, l.written, l.dropped, l.traceID = requestID, 0, 0, traceID
	l.startAt, l.logged = at, false
	l.mu.Unlock()
}

// platform writes one of the invocation's platform lines, after its START line.
func (l *invocationLog) platform(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.startLocked()
	l.record("platform", msg, time.Now())
}

// hasLogged reports whether the invocation has written its START line (it wrote output).
func (l *invocationLog) hasLogged() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.logged
}

// startLocked writes the START line if it is not written yet. l.mu is held.
func (l *invocationLog) startLocked() {
	if !l.logged {
		l.logged = true
		l.record("platform", "START RequestId: "+l.requestID+" Version: "+l.label, l.startAt)
	}
}

func (l *invocationLog) record(stream, msg string, at time.Time) {
	if l.sink != nil {
		l.sink(LogRecord{Time: at, Function: l.function, Version: l.version, RequestID: l.requestID, TraceID: l.traceID, Stream: stream, Message: msg})
	}
}

// end flushes unterminated lines and reports dropped output.
func (l *invocationLog) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for stream, buf := range l.partial {
		if len(buf) > 0 {
			l.emit(stream, buf)
			l.partial[stream] = buf[:0]
		}
	}
	if l.dropped > 0 {
		l.log.Warn("function output truncated", "function", l.function, "version", l.label,
			"request_id", l.requestID, "dropped_bytes", l.dropped, "limit_bytes", maxLogBytes)
	}
}

func (l *invocationLog) emit(stream string, line []byte) {
	msg := string(line)
	l.log.Info(msg, "function", l.function, "version", l.label, "request_id", l.requestID, "stream", stream)
	l.startLocked()
	l.record(stream, msg, time.Now())
}

// stream returns the writer for one of the guest's output streams.
func (l *invocationLog) stream(name string) *logStream { return &logStream{l: l, name: name} }

type logStream struct {
	l    *invocationLog
	name string
}

func (s *logStream) Write(p []byte) (int, error) {
	l := s.l
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	if room := maxLogBytes - l.written; len(p) > room {
		l.dropped += len(p) - max(room, 0)
		p = p[:max(room, 0)]
	}
	l.written += len(p)
	buf := l.partial[s.name]
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			buf = append(buf, p...)
			for len(buf) >= maxLogLine {
				l.emit(s.name, buf[:maxLogLine])
				buf = append(buf[:0], buf[maxLogLine:]...)
			}
			break
		}
		buf = append(buf, p[:i]...)
		for len(buf) > maxLogLine {
			l.emit(s.name, buf[:maxLogLine])
			buf = append(buf[:0], buf[maxLogLine:]...)
		}
		l.emit(s.name, buf)
		buf = buf[:0]
		p = p[i+1:]
	}
	l.partial[s.name] = buf
	return n, nil
}
