// Package accesslog writes access log lines off the request path: the gateway hands each line to
// Log, which queues it in a bounded buffer and never waits; one goroutine writes the queue to the
// lines' destinations — standard output, files (rotated by size), or a log group of the stack's log
// stream. When the buffer is full a line is dropped and counted in
// gatehouse_access_log_dropped_total, so a slow disk or a burst never slows requests.
package accesslog

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse.dev/gatehouse/internal/spec"
)

// DefaultQueue is how many lines wait to be written before new ones are dropped.
const DefaultQueue = 16384

// flushEvery bounds how long a written line stays in a buffer when lines keep coming.
const flushEvery = 200 * time.Millisecond

// Config configures a Writer.
type Config struct {
	// Stdout receives the lines of the stdout destination; default os.Stdout.
	Stdout io.Writer
	// Group publishes a line to a log group of the stack's log stream (group: destinations);
	// nil drops them.
	Group func(group string, line []byte)
	// Queue is the buffer's size in lines; default DefaultQueue.
	Queue int
	// Metrics, when set, receives the writer's counters.
	Metrics prometheus.Registerer
	// Logger receives write failures (each file's first, then one a minute); default discards.
	Logger *slog.Logger
}

type entry struct {
	target   string
	maxBytes int64
	line     []byte
}

// Writer writes access log lines. Log is safe for concurrent use; Run does the writing.
type Writer struct {
	cfg     Config
	queue   chan entry
	dropped prometheus.Counter
	written prometheus.Counter

	// Owned by Run.
	stdout *bufio.Writer
	files  map[string]*file
}

// New returns a Writer; lines are written once Run runs.
func New(cfg Config) *Writer {
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{cfg: cfg, queue: make(chan entry, cfg.Queue), files: map[string]*file{},
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_access_log_dropped_total",
			Help: "Access log lines dropped because the buffer of lines waiting to be written was full."}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_access_log_lines_total",
			Help: "Access log lines written."}),
	}
	w.stdout = bufio.NewWriterSize(cfg.Stdout, 64<<10)
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(w.dropped, w.written)
	}
	return w
}

// Log queues line for target (a spec.AccessLog destination; maxBytes rotates a file), or drops it
// when the queue is full. It never blocks. The Writer keeps line: the caller must not change it.
func (w *Writer) Log(target string, maxBytes int64, line []byte) {
	select {
	case w.queue <- entry{target: target, maxBytes: maxBytes, line: line}:
	default:
		w.dropped.Inc()
	}
}

// Run writes queued lines until ctx ends, then writes what is queued and closes the files.
func (w *Writer) Run(ctx context.Context) error {
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	defer w.close()
	for {
		select {
		case e := <-w.queue:
			w.write(e)
			// Write what else is queued, then flush once.
			for drained := false; !drained; {
				select {
				case e := <-w.queue:
					w.write(e)
				default:
					drained = true
				}
			}
			w.flush()
		case <-tick.C:
			w.flush()
		case <-ctx.Done():
			for {
				select {
				case e := <-w.queue:
					w.write(e)
				default:
					return nil
				}
			}
		}
	}
}

func (w *Writer) write(e entry) {
	w.written.Inc()
	switch {
	case e.target == spec.AccessLogStdout:
		w.stdout.Write(e.line)
		w.stdout.WriteByte('\n')
	case strings.HasPrefix(e.target, spec.AccessLogGroupPrefix):
		if w.cfg.Group != nil {
			w.cfg.Group(strings.TrimPrefix(e.target, spec.AccessLogGroupPrefix), e.line)
		}
	case strings.HasPrefix(e.target, spec.AccessLogFilePrefix):
		path := strings.TrimPrefix(e.target, spec.AccessLogFilePrefix)
		f := w.files[path]
		if f == nil {
			f = &file{path: path, log: w.cfg.Logger}
			w.files[path] = f
		}
		f.write(e.line, e.maxBytes)
	}
}

func (w *Writer) flush() {
	if err := w.stdout.Flush(); err != nil {
		w.cfg.Logger.Warn("access log: writing to stdout", "err", err)
	}
	for _, f := range w.files {
		f.flush()
	}
}

func (w *Writer) close() {
	w.flush()
	for _, f := range w.files {
		f.close()
	}
}

// file is one file destination, rotated by size.
type file struct {
	path   string
	log    *slog.Logger
	f      *os.File
	buf    *bufio.Writer
	size   int64
	failed time.Time // when opening or writing last failed; retried a second later
}

func (f *file) open() bool {
	if f.f != nil {
		return true
	}
	if !f.failed.IsZero() && time.Since(f.failed) < time.Second {
		return false
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
		f.fail("creating the directory", err)
		return false
	}
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		f.fail("opening", err)
		return false
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		f.fail("opening", err)
		return false
	}
	f.f, f.buf, f.size, f.failed = fh, bufio.NewWriterSize(fh, 64<<10), st.Size(), time.Time{}
	return true
}

func (f *file) fail(doing string, err error) {
	if f.failed.IsZero() || time.Since(f.failed) > time.Minute {
		f.log.Warn("access log: "+doing+" "+f.path+" failed; lines for it are dropped until it works", "err", err)
	}
	f.failed = time.Now()
}

func (f *file) write(line []byte, maxBytes int64) {
	if maxBytes > 0 && f.size > 0 && f.size+int64(len(line))+1 > maxBytes {
		f.rotate()
	}
	if !f.open() {
		return
	}
	n, _ := f.buf.Write(line)
	f.buf.WriteByte('\n')
	f.size += int64(n) + 1
}

// rotate renames the file PATH.1, moving older ones up to PATH.<kept> (the oldest is removed).
func (f *file) rotate() {
	f.close()
	kept := spec.AccessLogFilesKept
	_ = os.Remove(fmt.Sprintf("%s.%d", f.path, kept))
	for i := kept - 1; i >= 1; i-- {
		_ = os.Rename(fmt.Sprintf("%s.%d", f.path, i), fmt.Sprintf("%s.%d", f.path, i+1))
	}
	if err := os.Rename(f.path, f.path+".1"); err != nil && !os.IsNotExist(err) {
		f.fail("rotating", err)
	}
	f.size = 0
}

func (f *file) flush() {
	if f.buf != nil {
		if err := f.buf.Flush(); err != nil {
			f.fail("writing", err)
			f.close()
		}
	}
}

func (f *file) close() {
	if f.f == nil {
		return
	}
	_ = f.buf.Flush()
	_ = f.f.Close()
	f.f, f.buf = nil, nil
}
