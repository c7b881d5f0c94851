package logstream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// ErrInvalid means an argument is wrong: a function or stack name that is not a NATS token, a
// negative limit. Every error returned for such a reason wraps it.
var ErrInvalid = errors.New("invalid")

// Stream defaults and bounds.
const (
	// DefaultMaxBytes is Limits.MaxBytes's default: the stream keeps the newest 64 MiB of records.
	DefaultMaxBytes = 64 << 20
	// DefaultMaxAge is Limits.MaxAge's default: records older than a day are discarded.
	DefaultMaxAge = 24 * time.Hour
	// DefaultMaxMsgSize is Limits.MaxMsgSize's default, and the largest encoded record a
	// [Publisher] sends. It holds a record with an 8 KiB line of text, its metadata and JSON escapes.
	DefaultMaxMsgSize = 16 << 10

	// MaxFunctionName is the longest function name: records are published to a subject whose last
	// token is the function's name.
	MaxFunctionName = 64
	// maxStackName matches the longest stack name the rest of Gatehouse accepts.
	maxStackName = 128
)

// Record streams.
const (
	StreamStdout   = "stdout"
	StreamStderr   = "stderr"
	StreamPlatform = "platform"
)

// Record is one line of a function's output, or a platform message about an invocation.
type Record struct {
	Time      time.Time `json:"time"`
	Function  string    `json:"function"`
	Version   int       `json:"version"` // 0 when unknown
	RequestID string    `json:"requestId,omitempty"`
	TraceID   string    `json:"traceId,omitempty"`
	Stream    string    `json:"stream"` // "stdout", "stderr" or "platform"
	Worker    string    `json:"worker,omitempty"`
	Message   string    `json:"message"`
	// Seq is the record's sequence in the stack's log stream, set when it is read (not stored):
	// it orders the records and identifies each one.
	Seq uint64 `json:"-"`
}

// StreamName returns the name of the stack's log stream: "gh_<stack>_logs".
func StreamName(stack string) string { return "gh_" + stack + "_logs" }

// Subject returns the subject of the function's records: "gh.<stack>.logs.<function>".
func Subject(stack, function string) string { return subjectPrefix(stack) + function }

// SubjectAll returns the subject that matches the records of every function of the stack:
// "gh.<stack>.logs.*". It is the log stream's subject.
func SubjectAll(stack string) string { return subjectPrefix(stack) + "*" }

func subjectPrefix(stack string) string { return "gh." + stack + ".logs." }

// Limits bound the log stream. Zero fields take their defaults.
type Limits struct {
	// MaxBytes bounds the stream's size; when a record would exceed it, the oldest records are
	// discarded. Default DefaultMaxBytes.
	MaxBytes int64
	// MaxAge is how long a record is kept at most. Default DefaultMaxAge.
	MaxAge time.Duration
	// MaxMsgSize bounds one stored record. Default DefaultMaxMsgSize. A Publisher never sends a
	// record larger than DefaultMaxMsgSize, so a larger value changes nothing and a smaller one
	// makes the stream refuse some records (silently: publishing is not acknowledged).
	MaxMsgSize int32
}

// Validate reports whether the limits can be used; zero fields are valid (their defaults).
func (l Limits) Validate() error {
	if l.MaxBytes < 0 || l.MaxAge < 0 || l.MaxMsgSize < 0 {
		return fmt.Errorf("logstream: limits %+v: want zero (the default) or positive values: %w", l, ErrInvalid)
	}
	return nil
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes == 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxAge == 0 {
		l.MaxAge = DefaultMaxAge
	}
	if l.MaxMsgSize == 0 {
		l.MaxMsgSize = DefaultMaxMsgSize
	}
	return l
}

// Ensure creates the stack's log stream (file storage, oldest records discarded first, bounded by
// l) or, when it exists, updates its limits. It is idempotent, and several nodes may call it at once.
func Ensure(ctx context.Context, js jetstream.JetStream, stack string, l Limits) error {
	if !validToken(stack, maxStackName) {
		return fmt.Errorf("logstream: stack %s: want 1 to %d letters, digits, - and _: %w", yamlnode.QuoteShort(stack), maxStackName, ErrInvalid)
	}
	if err := l.Validate(); err != nil {
		return err
	}
	l = l.withDefaults()
	name := StreamName(stack)
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:         name,
		Description:  "Gatehouse function output of stack " + stack,
		Subjects:     []string{SubjectAll(stack)},
		Retention:    jetstream.LimitsPolicy,
		Discard:      jetstream.DiscardOld,
		Storage:      jetstream.FileStorage,
		MaxBytes:     l.MaxBytes,
		MaxAge:       l.MaxAge,
		MaxMsgSize:   l.MaxMsgSize,
		MaxMsgs:      -1,
		MaxConsumers: -1,
		Replicas:     1,
	})
	if err != nil {
		return fmt.Errorf("logstream: ensuring stream %s: %w", name, err)
	}
	return nil
}

// Publisher sends records to the log stream with core NATS publishes: it never waits for the
// server to acknowledge or store a record, so it never slows an invocation down. A Publisher is safe
// for concurrent use.
type Publisher struct {
	nc      *nats.Conn
	prefix  string
	dropped atomic.Uint64
}

// NewPublisher returns a Publisher of records of the stack's functions through nc. It does no I/O.
func NewPublisher(nc *nats.Conn, stack string) *Publisher {
	return &Publisher{nc: nc, prefix: subjectPrefix(stack)}
}

// Publish encodes r as JSON and publishes it to Subject(stack, r.Function). It never waits for a
// reply and never returns an error; a record it cannot send is counted in [Publisher.Dropped].
//
// # Notes
//
// The record goes into the connection's write buffer. A full buffer is written to the socket on the
// spot, so Publish can wait for the kernel to take bytes (never for the server to answer) when the
// connection is backed up.
//
// A record is dropped when its Function is not a valid name (it would land outside the stream), when
// its encoding exceeds DefaultMaxMsgSize (the stream would refuse it; an 8 KiB line encodes larger
// only when full of control characters or invalid UTF-8), or when the connection refuses it
// (closed, draining, its reconnect buffer full). A record the server receives but does not store,
// for example because the stream does not exist, is not counted: nothing says so without an
// acknowledgement.
func (p *Publisher) Publish(r Record) {
	if !validSource(r.Function) {
		p.dropped.Add(1)
		return
	}
	data, err := json.Marshal(r)
	if err != nil || len(data) > DefaultMaxMsgSize {
		p.dropped.Add(1)
		return
	}
	if err := p.nc.Publish(p.prefix+r.Function, data); err != nil {
		p.dropped.Add(1)
	}
}

// Dropped returns how many records Publish could not send.
func (p *Publisher) Dropped() uint64 { return p.dropped.Load() }

// validToken reports whether s is 1..maxLen of [A-Za-z0-9_-]: a single NATS subject token with no
// wildcard, and a valid part of a stream name.
func validToken(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// GroupSource is the name under which a log group's records (a stage's access log) are kept in the
// stream, beside the functions' own, in Record.Function: "@" and the group's name in base64url, a
// subject token that no function's name can be.
func GroupSource(group string) string {
	return "@" + base64.RawURLEncoding.EncodeToString([]byte(group))
}

// GroupOf is the group a source names, and false when it names a function.
func GroupOf(source string) (string, bool) {
	rest, ok := strings.CutPrefix(source, "@")
	if !ok {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	return string(b), err == nil
}

// maxGroupSource bounds a GroupSource: a group name of 512 bytes, in base64.
const maxGroupSource = 1 + 684

// validSource reports whether s is a function's name or a GroupSource.
func validSource(s string) bool {
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		return validToken(rest, maxGroupSource-1)
	}
	return validToken(s, MaxFunctionName)
}

func checkFunction(function string) error {
	if !validSource(function) {
		return fmt.Errorf("logstream: function %s: want 1 to %d letters, digits, - and _: %w", yamlnode.QuoteShort(function), MaxFunctionName, ErrInvalid)
	}
	return nil
}
