package bus

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// EnvelopeVersion is the schema version of the invocation envelope.
const EnvelopeVersion = "1"

// MaxPayload is the largest message the bus carries: a 10 MB request body, base64-encoded inside its
// event, with room for headers.
const MaxPayload = 16 << 20

// Header names of the envelope.
const (
	HeaderEnvelope    = "Gh-Envelope"
	HeaderRequestID   = "Gh-Request-Id"
	HeaderDeadline    = "Gh-Deadline"
	HeaderTraceParent = "traceparent"
	HeaderFunctionID  = "Gh-Function-Id"
	HeaderVersion     = "Gh-Function-Version"
	HeaderError       = "Gh-Error"
	HeaderErrorDetail = "Gh-Error-Detail"
)

// Invocation is one call of a function as it crosses the bus.
type Invocation struct {
	// Function is the function's name.
	Function string
	// FunctionID and Version name the function version to run, as the registry numbers them. A
	// worker given no FunctionID runs the version of Function it serves by default.
	FunctionID string
	Version    int
	// Timeout is the function's own time limit, for the dispatcher: an invocation unanswered past it
	// (and the overrun grace) marks its worker as frozen. 0 means the DispatchConfig's limit, if any.
	Timeout time.Duration
	// MaxConcurrency bounds the invocations of Function that run at once through one dispatcher (the
	// function's reserved concurrency); 0 means the DispatchConfig's limit, if any.
	MaxConcurrency int
	// RequestID identifies the request end to end.
	RequestID string
	// TraceParent is a W3C traceparent value, or "".
	TraceParent string
	// Deadline is when the caller stops waiting; zero means no deadline.
	Deadline time.Time
	// Payload is the event, passed to the function unchanged.
	Payload []byte
}

// Code is an error code carried in the Gh-Error header.
type Code string

// Error codes. Each maps to one sentinel error.
const (
	CodeFunctionNotFound Code = "function-not-found"
	CodeFunctionError    Code = "function-error"
	CodeFunctionTimeout  Code = "function-timeout"
	CodeThrottled        Code = "throttled"
	CodeResponseTooLarge Code = "response-too-large"
	CodeBadEnvelope      Code = "bad-envelope"
	CodeInternal         Code = "internal"
	CodeOverloaded       Code = "overloaded"
)

// Sentinel errors. Errors returned by [Dispatcher.Invoke] wrap one of these (check with errors.Is).
var (
	ErrFunctionNotFound = errors.New("function not found")
	ErrFunctionError    = errors.New("function error")
	ErrFunctionTimeout  = errors.New("function timed out")
	ErrThrottled        = errors.New("function throttled")
	ErrResponseTooLarge = errors.New("function response too large")
	ErrBadEnvelope      = errors.New("bad invocation envelope")
	ErrInternal         = errors.New("internal worker error")
	// ErrOverloaded means the worker had no capacity for the invocation; it did not run, and may be
	// sent again later.
	ErrOverloaded = errors.New("worker out of capacity")
	// ErrNoWorkers means no worker is subscribed to take the invocation.
	ErrNoWorkers = errors.New("no worker available")
)

var codeErrors = map[Code]error{
	CodeFunctionNotFound: ErrFunctionNotFound,
	CodeFunctionError:    ErrFunctionError,
	CodeFunctionTimeout:  ErrFunctionTimeout,
	CodeThrottled:        ErrThrottled,
	CodeResponseTooLarge: ErrResponseTooLarge,
	CodeBadEnvelope:      ErrBadEnvelope,
	CodeInternal:         ErrInternal,
	CodeOverloaded:       ErrOverloaded,
}

// CodeOf returns the wire code for err: the code of the sentinel it wraps, or CodeInternal.
func CodeOf(err error) Code {
	for code, sentinel := range codeErrors {
		if errors.Is(err, sentinel) {
			return code
		}
	}
	return CodeInternal
}

// RemoteError is an error reported by the other side of the bus.
type RemoteError struct {
	Code   Code
	Detail string
}

func (e *RemoteError) Error() string {
	if e.Detail == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Detail
}

// Unwrap returns the sentinel error for the code, so errors.Is works after a hop.
func (e *RemoteError) Unwrap() error {
	if s, ok := codeErrors[e.Code]; ok {
		return s
	}
	return ErrInternal
}

func formatDeadline(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

func parseDeadline(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}

// FunctionFailure is how a worker describes a failed invocation, as Lambda does: errorType,
// errorMessage and stackTrace (JSON in a RemoteError's Detail).
type FunctionFailure struct {
	ErrorType    string   `json:"errorType"`
	ErrorMessage string   `json:"errorMessage"`
	StackTrace   []string `json:"stackTrace,omitempty"`
}

// FailureOf is the failure err carries from a worker, or otherwise when it carries none.
func FailureOf(err error, otherwise FunctionFailure) FunctionFailure {
	var re *RemoteError
	var f FunctionFailure
	if errors.As(err, &re) && json.Unmarshal([]byte(re.Detail), &f) == nil && f.ErrorType != "" {
		return f
	}
	return otherwise
}
