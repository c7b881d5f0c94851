package sam

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/spec"
)

// Asynchronous invocations and schedules: a function's Schedule and ScheduleV2 events become its
// schedules:, and its EventInvokeConfig (or an AWS::Lambda::EventInvokeConfig resource that names
// it) its async: settings. Destinations other than Lambda functions, and the schedules' own retry
// and dead-letter settings, are noticed and skipped.

// scheduleEvent returns the schedules: entry of a Schedule or ScheduleV2 event: its expression,
// Input and (ScheduleV2, cron) ScheduleExpressionTimezone; nil for a disabled event and for a
// one-time schedule, with a notice. The expression is checked with the stack file.
func (r *reader) scheduleEvent(id, evName, typ string, p, ev *doctree.Node) (*doctree.Node, error) {
	key := "Schedule"
	if typ == "ScheduleV2" {
		key = "ScheduleExpression"
	}
	expr := p.Get(key)
	if expr == nil || !expr.IsScalar() || strings.TrimSpace(expr.Text) == "" {
		return nil, r.Errorf(cmpNode(expr, ev), "function %s: event %s: a %s event names its schedule in %s, such as rate(5 minutes) or cron(0 12 * * ? *)", id, evName, typ, key)
	}
	if v := p.Get("Enabled"); v != nil && strings.EqualFold(v.Scalar(), "false") {
		r.Notice(v, "function %s: event %s is disabled (Enabled: false): no schedule is made", id, evName)
		return nil, nil
	}
	if v := p.Get("State"); v != nil && strings.EqualFold(v.Scalar(), "DISABLED") {
		r.Notice(v, "function %s: event %s is disabled (State: DISABLED): no schedule is made", id, evName)
		return nil, nil
	}
	text := strings.TrimSpace(expr.Text)
	if strings.HasPrefix(text, "at(") {
		r.Notice(expr, "function %s: event %s: one-time schedules (%s) are not served locally: skipped", id, evName, text)
		return nil, nil
	}
	s := doctree.NewMap(ev)
	s.Set("expression", doctree.Str(text, expr))
	if in := p.Get("Input"); in != nil {
		v, err := inputNode(in)
		if err != nil {
			return nil, r.Errorf(in, "function %s: event %s: Input: %v", id, evName, err)
		}
		s.Set("input", v)
	}
	// A time zone means something to cron expressions only (EventBridge Scheduler takes one with a
	// rate too, and it changes nothing).
	if tz := p.Get("ScheduleExpressionTimezone"); tz != nil && typ == "ScheduleV2" && strings.HasPrefix(text, "cron(") {
		s.Set("timezone", doctree.Str(tz.Scalar(), tz))
	}
	for _, k := range []string{"RetryPolicy", "DeadLetterConfig", "FlexibleTimeWindow", "StartDate", "EndDate"} {
		if v := p.Get(k); v != nil {
			r.Notice(v, "function %s: event %s: %s is not served locally: ignored", id, evName, k)
		}
	}
	return s, nil
}

// inputNode is the event a schedule's Input gives: a JSON string as the value it holds, a mapping
// or list written in place as it is.
func inputNode(in *doctree.Node) (*doctree.Node, error) {
	if in.Kind != doctree.String {
		return in, nil
	}
	v, err := jsonNode(in.Text, in)
	if err != nil {
		return nil, fmt.Errorf("want JSON text, such as '{\"report\": \"daily\"}': %v", err)
	}
	return v, nil
}

// jsonNode returns the value of a JSON text as a tree, every value placed at at.
func jsonNode(text string, at *doctree.Node) (*doctree.Node, error) {
	// encoding/json's own messages say more than its tokenizer's.
	if err := json.Unmarshal([]byte(text), new(json.RawMessage)); err != nil {
		return nil, err
	}
	return doctree.FromJSON([]byte(text), at)
}

// eventInvokeConfig reads an EventInvokeConfig (a function's, or the properties of an
// AWS::Lambda::EventInvokeConfig resource) as the stack file's async: settings; nil when it sets
// nothing Gatehouse serves. what names it in messages ("function Fn").
func (r *reader) eventInvokeConfig(what string, c *doctree.Node) (*doctree.Node, error) {
	if c.Kind != doctree.Map {
		return nil, r.Errorf(c, "%s: EventInvokeConfig: want a mapping", what)
	}
	a := doctree.NewMap(c)
	if v := c.Get("MaximumRetryAttempts"); v != nil {
		n, err := strconv.Atoi(v.Scalar())
		if err != nil || n < 0 || n > spec.MaxAsyncRetryAttempts {
			return nil, r.Errorf(v, "%s: MaximumRetryAttempts %q: want 0 to %d", what, v.Scalar(), spec.MaxAsyncRetryAttempts)
		}
		a.Set("maximumRetryAttempts", &doctree.Node{Kind: doctree.Number, Text: strconv.Itoa(n), Line: v.Line, Column: v.Column, Path: v.Path})
	}
	if v := c.Get("MaximumEventAgeInSeconds"); v != nil {
		n, err := strconv.Atoi(v.Scalar())
		lo, hi := int(spec.MinAsyncEventAge.Seconds()), int(spec.MaxAsyncEventAge.Seconds())
		if err != nil || n < lo || n > hi {
			return nil, r.Errorf(v, "%s: MaximumEventAgeInSeconds %q: want %d to %d seconds", what, v.Scalar(), lo, hi)
		}
		a.Set("maximumEventAge", doctree.Str(strconv.Itoa(n)+"s", v))
	}
	dc := c.Get("DestinationConfig")
	for _, k := range []struct{ key, to string }{{"OnSuccess", "onSuccess"}, {"OnFailure", "onFailure"}} {
		d := dc.Get(k.key)
		if d == nil {
			continue
		}
		dest, err := r.destination(what, k.key, d)
		if err != nil {
			return nil, err
		}
		if dest != nil {
			a.Set(k.to, dest)
		}
	}
	if len(a.Keys) == 0 {
		return nil, nil
	}
	return a, nil
}

// destination is the stack file's onSuccess or onFailure (which is OnSuccess or OnFailure) for a
// DestinationConfig entry: "function:NAME" for a function of the template (its ARN, as !GetAtt
// FN.Arn gives it, or its name, as !Ref FN gives it), another Lambda function's ARN as it is; nil,
// with a notice, for a queue, a topic, an event bus or a bucket. The type is Type, or else the
// service of the Destination's ARN (AWS::Lambda::EventInvokeConfig writes no Type).
func (r *reader) destination(what, which string, d *doctree.Node) (*doctree.Node, error) {
	if d.Kind != doctree.Map {
		return nil, r.Errorf(d, "%s: DestinationConfig.%s: want a mapping with Type and Destination", what, which)
	}
	dest := d.Get("Destination")
	arn := strings.TrimSpace(dest.Scalar())
	typ := d.Get("Type").Scalar()
	if d.Get("Type") == nil {
		if arn == "" {
			return nil, r.Errorf(d, "%s: DestinationConfig.%s: want Destination, the ARN of a function (!GetAtt FUNCTION.Arn)", what, which)
		}
		if typ = r.destinationType(arn); typ == "" {
			r.Notice(cmpNode(dest, d), "%s: DestinationConfig.%s: %q is not a Lambda function, and other destinations are not served locally: skipped", what, which, arn)
			return nil, nil
		}
	}
	switch typ {
	case "Lambda":
		if dest == nil || !dest.IsScalar() || arn == "" {
			return nil, r.Errorf(cmpNode(dest, d), "%s: DestinationConfig.%s: a Lambda destination names its function in Destination: its ARN, !GetAtt FUNCTION.Arn or !Ref FUNCTION", what, which)
		}
		if name := r.templateFunction(arn); name != "" {
			return doctree.Str("function:"+name, dest), nil
		}
		if _, err := spec.DestinationFunction(arn); err != nil || !strings.HasPrefix(arn, "arn:") {
			return nil, r.Errorf(dest, "%s: DestinationConfig.%s: %q is not a Lambda function: want its ARN, !GetAtt FUNCTION.Arn or !Ref FUNCTION", what, which, arn)
		}
		return doctree.Str(arn, dest), nil
	case "SQS", "SNS", "EventBridge", "S3Bucket":
		outcome := "successful invocations send no record"
		if which == "OnFailure" {
			outcome = "failed invocations' records go to the stack's dead-letter stream (gatehouse queues counts them)"
		}
		r.Notice(d, "%s: DestinationConfig.%s: %s destinations are not served locally: %s", what, which, typ, outcome)
		return nil, nil
	case "":
		return nil, r.Errorf(d, "%s: DestinationConfig.%s: want Type (Lambda, SQS, SNS, EventBridge or S3Bucket) and Destination", what, which)
	}
	return nil, r.Errorf(d.Get("Type"), "%s: DestinationConfig.%s: Type %q: want Lambda, SQS, SNS, EventBridge or S3Bucket", what, which, typ)
}

// destinationType is the Type of the destination arn when DestinationConfig gives none: Lambda
// for a function, SQS, SNS, EventBridge or S3Bucket by the ARN's service or the template's
// resource (a Ref, or the ARN Fn::GetAtt gives a resource here); "" when it is none of those.
func (r *reader) destinationType(arn string) string {
	if r.templateFunction(arn) != "" {
		return "Lambda"
	}
	byService := map[string]string{"lambda": "Lambda", "sqs": "SQS", "sns": "SNS", "events": "EventBridge", "s3": "S3Bucket"}
	byResource := map[string]string{"AWS::SQS::Queue": "SQS", "AWS::SNS::Topic": "SNS", "AWS::Events::EventBus": "EventBridge", "AWS::S3::Bucket": "S3Bucket"}
	parts := strings.Split(arn, ":")
	switch {
	case len(parts) == 6 && parts[0] == "arn" && parts[2] == "local":
		return byResource[r.resources.Get(parts[5]).Get("Type").Scalar()]
	case len(parts) > 2 && parts[0] == "arn":
		return byService[parts[2]]
	}
	return byResource[r.resources.Get(arn).Get("Type").Scalar()]
}

// templateFunction returns the name of the template's function that v is (its name, as Ref gives
// it, or its ARN, as Fn::GetAtt FN.Arn gives it); "" when none is.
func (r *reader) templateFunction(v string) string {
	for _, name := range r.functionNames {
		if v == name || v == spec.FunctionARN(r.opts.Region, r.opts.AccountID, name) {
			return name
		}
	}
	return ""
}

// eventInvokeConfigResource gives the function an AWS::Lambda::EventInvokeConfig names its async:
// settings. Gatehouse keeps one configuration per function: a qualifier other than $LATEST is
// noticed, and a second configuration for the same function is refused.
func (r *reader) eventInvokeConfigResource(id string, res *doctree.Node) error {
	p, err := r.props(res, "")
	if err != nil {
		return err
	}
	what := "EventInvokeConfig " + id
	fnName := p.Get("FunctionName")
	name := r.templateFunction(fnName.Scalar())
	if name == "" {
		if n, err := spec.DestinationFunction(fnName.Scalar()); err == nil && r.functions.Get(n) != nil {
			name = n // an ARN written out, in another region or account
		}
	}
	if name == "" || r.functions.Get(name) == nil {
		r.Notice(cmpNode(fnName, res), "%s: FunctionName %q is not a function of the template: skipped", what, fnName.Scalar())
		return nil
	}
	if prev, ok := r.asyncFrom[name]; ok {
		return r.Errorf(res, "%s: function %s already has an event invoke configuration (%s): Gatehouse keeps one per function", what, name, prev)
	}
	if q := p.Get("Qualifier"); q != nil && q.Scalar() != "$LATEST" {
		r.Notice(q, "%s: the settings of qualifier %s apply to every asynchronous invocation of function %s: Gatehouse keeps one configuration per function", what, q.Scalar(), name)
	}
	a, err := r.eventInvokeConfig(what, p)
	if err != nil || a == nil {
		return err
	}
	r.functions.Get(name).Set("async", a)
	r.asyncFrom[name] = "EventInvokeConfig " + id
	return nil
}
