package serverless

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/spec"
)

// Asynchronous invocations and schedules: a function's schedule events become its schedules:, and
// its maximumRetryAttempts, maximumEventAge and destinations its async: settings. Destinations
// other than Lambda functions are noticed and skipped.

// scheduleEvent returns the schedules: entries of a schedule event: "rate(…)" or "cron(…)", or
// {rate, enabled, input, timezone} whose rate is an expression or a list of them; none for a
// disabled event and for one-time schedules, with a notice. Expressions are checked with the stack
// file.
func (r *reader) scheduleEvent(fn string, e *doctree.Node) ([]*doctree.Node, error) {
	rate := e
	if e.Kind == doctree.Map {
		rate = e.Get("rate")
		if v := e.Get("enabled"); v != nil && strings.EqualFold(v.Scalar(), "false") {
			r.Notice(v, "function %s: the schedule is disabled (enabled: false): no schedule is made", fn)
			return nil, nil
		}
	}
	exprs := []*doctree.Node{rate}
	if rate != nil && rate.Kind == doctree.List {
		exprs = rate.Items
	}
	if rate == nil || len(exprs) == 0 {
		return nil, r.Errorf(e, "function %s: schedule: want rate(…) or cron(…), or {rate, enabled, input}", fn)
	}
	var input, timezone *doctree.Node
	if e.Kind == doctree.Map {
		if in := e.Get("input"); in != nil {
			v, err := inputNode(in)
			if err != nil {
				return nil, r.Errorf(in, "function %s: schedule input: %v", fn, err)
			}
			input = v
		}
		timezone = e.Get("timezone")
		for _, k := range []string{"inputPath", "inputTransformer"} {
			if v := e.Get(k); v != nil {
				r.Notice(v, "function %s: the schedule's %s is not served locally: ignored (each firing passes input, or the Scheduled Event)", fn, k)
			}
		}
	}
	var out []*doctree.Node
	for _, x := range exprs {
		if !x.IsScalar() || strings.TrimSpace(x.Text) == "" {
			return nil, r.Errorf(x, "function %s: schedule: want rate(…) or cron(…), such as rate(5 minutes) or cron(0 12 * * ? *)", fn)
		}
		text := strings.TrimSpace(x.Text)
		if strings.HasPrefix(text, "at(") {
			r.Notice(x, "function %s: one-time schedules (%s) are not served locally: skipped", fn, text)
			continue
		}
		s := doctree.NewMap(x)
		s.Set("expression", doctree.Str(text, x))
		if input != nil {
			s.Set("input", input)
		}
		if timezone != nil && strings.HasPrefix(text, "cron(") {
			s.Set("timezone", doctree.Str(timezone.Scalar(), timezone))
		}
		out = append(out, s)
	}
	return out, nil
}

// inputNode is the event a schedule's input gives: a mapping or list as it is, a string as the
// JSON value it holds.
func inputNode(in *doctree.Node) (*doctree.Node, error) {
	if in.Kind != doctree.String {
		return in, nil
	}
	// encoding/json's own messages say more than its tokenizer's.
	if err := json.Unmarshal([]byte(in.Text), new(json.RawMessage)); err != nil {
		return nil, fmt.Errorf("want a mapping, or JSON text: %v", err)
	}
	return doctree.FromJSON([]byte(in.Text), in)
}

// asyncSettings reads a function's maximumRetryAttempts, maximumEventAge (seconds) and
// destinations as the stack file's async: settings; nil when it sets none Gatehouse serves.
func (r *reader) asyncSettings(fn string, f *doctree.Node) (*doctree.Node, error) {
	a := doctree.NewMap(f)
	if v := f.Get("maximumRetryAttempts"); v != nil {
		n, err := strconv.Atoi(v.Scalar())
		if err != nil || n < 0 || n > spec.MaxAsyncRetryAttempts {
			return nil, r.Errorf(v, "function %s: maximumRetryAttempts %q: want 0 to %d", fn, v.Scalar(), spec.MaxAsyncRetryAttempts)
		}
		a.Set("maximumRetryAttempts", &doctree.Node{Kind: doctree.Number, Text: strconv.Itoa(n), Line: v.Line, Column: v.Column, Path: v.Path})
	}
	if v := f.Get("maximumEventAge"); v != nil {
		n, err := strconv.Atoi(v.Scalar())
		lo, hi := int(spec.MinAsyncEventAge.Seconds()), int(spec.MaxAsyncEventAge.Seconds())
		if err != nil || n < lo || n > hi {
			return nil, r.Errorf(v, "function %s: maximumEventAge %q: want %d to %d seconds", fn, v.Scalar(), lo, hi)
		}
		a.Set("maximumEventAge", doctree.Str(strconv.Itoa(n)+"s", v))
	}
	dests := f.Get("destinations")
	if dests != nil && dests.Kind != doctree.Map {
		return nil, r.Errorf(dests, "function %s: destinations: want {onSuccess, onFailure}", fn)
	}
	for k, d := range dests.All() {
		if k != "onSuccess" && k != "onFailure" {
			return nil, r.Errorf(d, "function %s: destinations.%s: unknown key: want onSuccess or onFailure", fn, k)
		}
		dest, err := r.destination(fn, k, d)
		if err != nil {
			return nil, err
		}
		if dest != nil {
			a.Set(k, dest)
		}
	}
	if len(a.Keys) == 0 {
		return nil, nil
	}
	return a, nil
}

// destination is the stack file's onSuccess or onFailure (which) for a destination: a function of
// the service by its key, or by the ARN it has on AWS, as "function:KEY"; another Lambda function's
// ARN as it is; nil, with a notice, for a queue, a topic or an event bus. A destination is a
// string, or {type, arn} with type function, sqs, sns or eventBus.
func (r *reader) destination(fn, which string, d *doctree.Node) (*doctree.Node, error) {
	what := fmt.Sprintf("function %s: destinations.%s", fn, which)
	v, typ := d, ""
	if d.Kind == doctree.Map {
		v, typ = d.Get("arn"), d.Get("type").Scalar()
		switch typ {
		case "function", "sqs", "sns", "eventBus":
		default:
			return nil, r.Errorf(cmpNode(d.Get("type"), d), "%s: type %q: want function, sqs, sns or eventBus", what, typ)
		}
		if v == nil {
			return nil, r.Errorf(d, "%s: want arn, with type", what)
		}
	}
	if !v.IsScalar() || strings.TrimSpace(v.Text) == "" {
		if typ != "" && typ != "function" {
			r.Notice(v, "%s: %s destinations are not served locally: %s", what, typ, skipped(which))
			return nil, nil
		}
		return nil, r.Errorf(v, "%s: want the name of a function of the service, or a Lambda function's ARN (a CloudFormation function is only evaluated by a deployed stack)", what)
	}
	s := strings.TrimSpace(v.Text)
	if !strings.HasPrefix(s, "arn:") {
		if typ != "" && typ != "function" {
			return nil, r.Errorf(v, "%s: want the ARN of the %s destination", what, typ)
		}
		if !slices.Contains(r.functionKeys, s) {
			return nil, r.Errorf(v, "%s: no function named %q in functions (defined: %s)", what, s, strings.Join(slices.Sorted(slices.Values(r.functionKeys)), ", "))
		}
		return doctree.Str("function:"+s, v), nil
	}
	parts := strings.Split(s, ":")
	service := ""
	if len(parts) > 2 {
		service = parts[2]
	}
	if service != "lambda" {
		kind := map[string]string{"sqs": "SQS", "sns": "SNS", "events": "EventBridge"}[service]
		if kind == "" {
			kind = "non-Lambda"
		}
		r.Notice(v, "%s: %s destinations are not served locally: %s", what, kind, skipped(which))
		return nil, nil
	}
	name, err := spec.DestinationFunction(s)
	if err != nil {
		return nil, r.Errorf(v, "%s: %q is not a Lambda function's ARN: want arn:aws:lambda:REGION:ACCOUNT:function:NAME", what, s)
	}
	for _, k := range r.functionKeys {
		if r.deployed[k] == name && len(parts) == 7 {
			return doctree.Str("function:"+k, v), nil
		}
	}
	return doctree.Str(s, v), nil
}

// skipped says what becomes of the records a destination that is not served would have had.
func skipped(which string) string {
	if which == "onFailure" {
		return "failed invocations' records go to the stack's dead-letter stream (gatehouse queues counts them)"
	}
	return "successful invocations send no record"
}
