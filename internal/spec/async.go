package spec

import (
	"fmt"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// AsyncSettings are how a function's asynchronous invocations (Lambda's Event invocation type) are
// retried and where their outcomes go (`async:` of a function); Lambda's event invoke configuration.
// A function without them has DefaultAsyncSettings.
type AsyncSettings struct {
	// MaximumRetryAttempts is how many times an invocation that failed is run again
	// (`maximumRetryAttempts:`), 0..MaxAsyncRetryAttempts, default 2.
	MaximumRetryAttempts int `json:"maximumRetryAttempts"`
	// MaximumEventAge is how long an event may wait, from when it was queued, before it is given up
	// (`maximumEventAge:`, a Go duration), MinAsyncEventAge..MaxAsyncEventAge, default 6h.
	MaximumEventAge Duration `json:"maximumEventAge"`
	// RetryDelay is how long the first retry waits after a failure (`retryDelay:`); each further
	// retry waits twice as long as the one before. MinAsyncRetryDelay..MaxAsyncRetryDelay, default
	// one minute, as Lambda's first retry.
	RetryDelay Duration `json:"retryDelay"`
	// OnSuccess and OnFailure are destinations (`onSuccess:`, `onFailure:`) that receive an
	// invocation record when an invocation succeeds, or when it failed its last attempt or grew too
	// old: "function:NAME" (or a Lambda function ARN), invoked asynchronously with the record, or
	// "subject:SUBJECT", a subject of the stack's event bus the record is published on. "" sends
	// nothing on success, and keeps failures in the stack's dead-letter stream.
	OnSuccess string `json:"onSuccess,omitempty"`
	OnFailure string `json:"onFailure,omitempty"`
}

// Invocation types of a function integration, as Lambda names them.
const (
	InvocationRequestResponse = "RequestResponse"
	InvocationEvent           = "Event"
)

// Limits of AsyncSettings, Lambda's where Lambda has them.
const (
	MaxAsyncRetryAttempts = 2
	MinAsyncEventAge      = time.Minute
	MaxAsyncEventAge      = 6 * time.Hour
	MinAsyncRetryDelay    = 100 * time.Millisecond
	MaxAsyncRetryDelay    = 15 * time.Minute
	// MaxAsyncPayload is the largest event an asynchronous invocation takes: 1 MB, as Lambda's.
	MaxAsyncPayload = 1 << 20
)

// DefaultAsyncSettings returns Lambda's defaults: two retries, events kept up to six hours, the first
// retry a minute after the failure, no destinations.
func DefaultAsyncSettings() AsyncSettings {
	return AsyncSettings{MaximumRetryAttempts: 2, MaximumEventAge: Duration(MaxAsyncEventAge), RetryDelay: Duration(time.Minute)}
}

// AsyncOrDefault returns s.Async, or DefaultAsyncSettings when it is nil.
func (s FunctionSettings) AsyncOrDefault() AsyncSettings {
	if s.Async == nil {
		return DefaultAsyncSettings()
	}
	return *s.Async
}

// DestinationSubject returns the subject a destination "subject:NAME" names, and whether it is one.
func DestinationSubject(dest string) (string, bool) {
	return strings.CutPrefix(dest, "subject:")
}

// DestinationFunction returns the function a destination names: "function:NAME", or a Lambda
// function ARN ("arn:aws:lambda:REGION:ACCOUNT:function:NAME", a qualifier after it is not taken).
func DestinationFunction(dest string) (string, error) {
	name, ok := strings.CutPrefix(dest, "function:")
	if !ok {
		parts := strings.Split(dest, ":")
		if len(parts) < 7 || parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "function" || len(parts) > 8 {
			return "", fmt.Errorf("%s is not a destination: want function:NAME or a Lambda function ARN", yamlnode.QuoteShort(dest))
		}
		name = parts[6]
	}
	if !validName(name, MaxFunctionNameLength, false) {
		return "", fmt.Errorf("%s is not a valid function name: want 1 to %d letters, digits, - and _", yamlnode.QuoteShort(name), MaxFunctionNameLength)
	}
	return name, nil
}

// checkAsync checks the async settings at path.
func (c *checker) checkAsync(path []string, a *AsyncSettings) {
	if a == nil {
		return
	}
	if a.MaximumRetryAttempts < 0 || a.MaximumRetryAttempts > MaxAsyncRetryAttempts {
		c.add(errf(sub(path, "maximumRetryAttempts"), false, "%d is out of range: want 0 to %d", a.MaximumRetryAttempts, MaxAsyncRetryAttempts))
	}
	if d := a.MaximumEventAge.D(); d < MinAsyncEventAge || d > MaxAsyncEventAge {
		c.add(errf(sub(path, "maximumEventAge"), false, "%s is out of range: want %s to %s", FormatDuration(d), FormatDuration(MinAsyncEventAge), FormatDuration(MaxAsyncEventAge)))
	}
	if d := a.RetryDelay.D(); d < MinAsyncRetryDelay || d > MaxAsyncRetryDelay {
		c.add(errf(sub(path, "retryDelay"), false, "%s is out of range: want %s to %s", FormatDuration(d), FormatDuration(MinAsyncRetryDelay), FormatDuration(MaxAsyncRetryDelay)))
	}
	for _, d := range []struct{ key, val string }{{"onSuccess", a.OnSuccess}, {"onFailure", a.OnFailure}} {
		if d.val == "" {
			continue
		}
		if subj, ok := DestinationSubject(d.val); ok {
			if err := CheckSubject(subj, false); err != nil {
				c.add(errf(sub(path, d.key), false, "%v", err))
			}
			continue
		}
		if _, err := DestinationFunction(d.val); err != nil {
			c.add(errf(sub(path, d.key), false, "%v; or subject:SUBJECT", err))
		}
	}
}
