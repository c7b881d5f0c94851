package scheduler

import (
	"bytes"
	"log/slog"
	"sync"
)

// maxLogLine bounds one record of guest output.
const maxLogLine = 8 << 10

// logWriter turns a guest's output into one log record per line.
type logWriter struct {
	log    *slog.Logger
	fn     string
	stream string

	mu  sync.Mutex
	buf []byte
}

func newLogWriter(log *slog.Logger, fn, stream string) *logWriter {
	return &logWriter{log: log, fn: fn, stream: stream}
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLogLine - len(w.buf)
			if len(p) > room {
				w.buf = append(w.buf, p[:room]...)
				w.flush()
				p = p[room:]
				continue
			}
			w.buf = append(w.buf, p...)
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.flush()
		p = p[i+1:]
	}
	return n, nil
}

func (w *logWriter) flush() {
	if len(w.buf) > maxLogLine {
		w.buf = w.buf[:maxLogLine]
	}
	w.log.Info(string(w.buf), "function", w.fn, "stream", w.stream)
	w.buf = w.buf[:0]
}
