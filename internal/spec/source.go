package spec

import (
	"fmt"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// EventSource feeds a function with the messages published on the stack's subjects (an entry of a
// function's `events:`), as an SQS queue feeds a Lambda function: in batches, as SQS-like Records,
// with partial batch failures redelivered and a message that keeps failing set aside as a dead
// letter.
type EventSource struct {
	// Subject is what the function receives (`subject:`): a subject of the stack's event bus, dot-
	// separated tokens of letters, digits, - and _, where * stands for one token and a final >
	// for one or more ("orders.*", "audit.>").
	Subject string `json:"subject"`
	// BatchSize is the most records of one invocation (`batchSize:`), 1..MaxBatchSize, default 10.
	BatchSize int `json:"batchSize"`
	// BatchWindow is how long to wait for a batch to fill once it has one record (`batchWindow:`),
	// 0..MaxBatchWindow, default 0: invoke with what there is.
	BatchWindow Duration `json:"batchWindow"`
	// StartingPosition is where a new source starts (`startingPosition:`): StartLatest (the
	// default: messages published from now on) or StartTrimHorizon (every message the stack's
	// event stream still holds).
	StartingPosition string `json:"startingPosition,omitempty"`
	// MaxReceiveCount is how many times a message is delivered before it is set aside as a dead
	// letter (`maxReceiveCount:`), 1..MaxReceiveCount, default 3.
	MaxReceiveCount int `json:"maxReceiveCount"`
}

// Limits and values of EventSource.
const (
	MaxBatchSize       = 1000
	MaxBatchWindow     = 5 * time.Minute
	MaxReceiveCount    = 100
	MaxEventSources    = 10
	StartLatest        = "LATEST"
	StartTrimHorizon   = "TRIM_HORIZON"
	DefaultBatchSize   = 10
	DefaultReceiveMax  = 3
	maxSubjectTokens   = 16
	maxSubjectTokenLen = 64
)

// DefaultEventSource returns an event source of subject with every default.
func DefaultEventSource(subject string) EventSource {
	return EventSource{Subject: subject, BatchSize: DefaultBatchSize, MaxReceiveCount: DefaultReceiveMax, StartingPosition: StartLatest}
}

// CheckSubject checks a subject of the stack's event bus: wildcards (* for a token, a final > for
// the rest) only when wild.
func CheckSubject(s string, wild bool) error {
	toks := strings.Split(s, ".")
	if s == "" || len(toks) > maxSubjectTokens {
		return fmt.Errorf("%s is not a subject: want 1 to %d dot-separated tokens, such as orders.created", yamlnode.QuoteShort(s), maxSubjectTokens)
	}
	for i, t := range toks {
		switch {
		case wild && t == "*", wild && t == ">" && i == len(toks)-1:
		case t == "*" || t == ">":
			if !wild {
				return fmt.Errorf("%s: a subject to publish to has no wildcards", yamlnode.QuoteShort(s))
			}
			return fmt.Errorf("%s: > only ends a subject", yamlnode.QuoteShort(s))
		case t == "" || len(t) > maxSubjectTokenLen || strings.Trim(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "":
			return fmt.Errorf("%s is not a subject: each token is 1 to %d letters, digits, - and _", yamlnode.QuoteShort(s), maxSubjectTokenLen)
		}
	}
	return nil
}

// SubjectMatches reports whether subject (no wildcards) matches pattern, where * stands for one
// token and a final > for one or more.
func SubjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, t := range p {
		switch {
		case t == ">" && i == len(p)-1:
			return len(s) > i
		case i >= len(s):
			return false
		case t != "*" && t != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}

// checkEventSources checks a function's event sources at path.
func (c *checker) checkEventSources(path []string, es []EventSource) {
	if len(es) > MaxEventSources {
		c.add(errf(path, true, "%d event sources; at most %d", len(es), MaxEventSources))
	}
	for i, e := range es {
		p := sub(path, Index(i))
		if err := CheckSubject(e.Subject, true); err != nil {
			c.add(errf(sub(p, "subject"), false, "%v", err))
		}
		if e.BatchSize < 1 || e.BatchSize > MaxBatchSize {
			c.add(errf(sub(p, "batchSize"), false, "%d is out of range: want 1 to %d", e.BatchSize, MaxBatchSize))
		}
		if d := e.BatchWindow.D(); d < 0 || d > MaxBatchWindow {
			c.add(errf(sub(p, "batchWindow"), false, "%s is out of range: want 0s to %s", FormatDuration(d), FormatDuration(MaxBatchWindow)))
		}
		if e.StartingPosition != StartLatest && e.StartingPosition != StartTrimHorizon {
			c.add(errf(sub(p, "startingPosition"), false, "%s: want %s (the default) or %s", yamlnode.QuoteShort(e.StartingPosition), StartLatest, StartTrimHorizon))
		}
		if e.MaxReceiveCount < 1 || e.MaxReceiveCount > MaxReceiveCount {
			c.add(errf(sub(p, "maxReceiveCount"), false, "%d is out of range: want 1 to %d", e.MaxReceiveCount, MaxReceiveCount))
		}
	}
}
