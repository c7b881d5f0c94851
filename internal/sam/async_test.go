package sam

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
	"gatehouse.dev/gatehouse/internal/testfix"
)

// asyncTemplate is a template whose function Fn has an HttpApi event, its Properties ending with
// props, and a function named notify (logical id Notify); extra is added under Resources.
func asyncTemplate(globals, props, extra string) string {
	return "Transform: AWS::Serverless-2016-10-31\n" + globals + "Resources:\n" +
		"  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: .\n      Runtime: python3.12\n      Handler: app.handler\n" +
		"      Events:\n        Get:\n          Type: HttpApi\n          Properties: {Path: /a, Method: GET}\n" + props +
		"  Notify:\n    Type: AWS::Serverless::Function\n    Properties:\n      FunctionName: notify\n      CodeUri: .\n      Runtime: python3.12\n      Handler: app.notify\n" +
		extra
}

// readStack reads a template as readTemplate does, and returns the validated stack, the notices
// and the error (with the directory written $DIR/ taken off).
func readStack(t *testing.T, template string) (*spec.Stack, string, string) {
	t.Helper()
	dir := testfix.WriteArchive(t, []txtar.File{{Name: "template.yaml", Data: []byte(template)}})
	file := filepath.Join(dir, "template.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Read(file, doc, Options{StackName: "app"})
	var s *spec.Stack
	var notes []string
	if err == nil {
		for _, n := range res.Notices {
			notes = append(notes, n.Error())
		}
		s, err = stackfile.ParseDoc(file, res.Stack, dir)
	}
	clean := func(s string) string { return strings.ReplaceAll(s, dir+"/", "") }
	if err != nil {
		return nil, clean(strings.Join(notes, "\n")), clean(err.Error())
	}
	return s, clean(strings.Join(notes, "\n")), ""
}

// TestScheduleEvents checks what Schedule and ScheduleV2 events become, and what is skipped or
// refused, at the template's lines.
func TestScheduleEvents(t *testing.T) {
	const events = "        Nightly:\n          Type: Schedule\n          Properties:\n"
	const v2 = "        Hourly:\n          Type: ScheduleV2\n          Properties:\n"
	tests := []struct {
		name, props string
		want        []spec.Schedule
		wantNotice  string
		wantError   string
	}{
		{name: "rate with input",
			props: events + "            Schedule: rate(5 minutes)\n            Name: nightly-report\n            Description: the report\n" +
				"            Input: '{\"report\": \"daily\", \"n\": [1, 2.5, true, null]}'\n",
			want: []spec.Schedule{{Expression: "rate(5 minutes)", Input: json.RawMessage(`{"report":"daily","n":[1,2.5,true,null]}`)}}},
		{name: "cron",
			props: events + "            Schedule: cron(0 12 * * ? *)\n            Enabled: true\n",
			want:  []spec.Schedule{{Expression: "cron(0 12 * * ? *)"}}},
		{name: "input written as a mapping",
			props: events + "            Schedule: rate(1 hour)\n            Input: {report: weekly}\n",
			want:  []spec.Schedule{{Expression: "rate(1 hour)", Input: json.RawMessage(`{"report":"weekly"}`)}}},
		{name: "disabled",
			props:      events + "            Schedule: rate(5 minutes)\n            Enabled: false\n",
			wantNotice: "template.yaml:17:22: Resources.Fn.Properties.Events.Nightly.Properties.Enabled: function Fn: event Nightly is disabled (Enabled: false): no schedule is made"},
		{name: "retry policy ignored",
			props:      events + "            Schedule: rate(5 minutes)\n            RetryPolicy: {MaximumRetryAttempts: 5}\n",
			want:       []spec.Schedule{{Expression: "rate(5 minutes)"}},
			wantNotice: "template.yaml:17:26: Resources.Fn.Properties.Events.Nightly.Properties.RetryPolicy: function Fn: event Nightly: RetryPolicy is not served locally: ignored"},
		{name: "v2 cron in a time zone",
			props: v2 + "            ScheduleExpression: cron(30 8 ? * MON-FRI *)\n            ScheduleExpressionTimezone: Europe/Paris\n            Input: '{\"a\": 1}'\n",
			want:  []spec.Schedule{{Expression: "cron(30 8 ? * MON-FRI *)", TimeZone: "Europe/Paris", Input: json.RawMessage(`{"a":1}`)}}},
		{name: "v2 rate drops the time zone",
			props: v2 + "            ScheduleExpression: rate(1 hour)\n            ScheduleExpressionTimezone: Europe/Paris\n",
			want:  []spec.Schedule{{Expression: "rate(1 hour)"}}},
		{name: "v2 disabled",
			props:      v2 + "            ScheduleExpression: rate(1 hour)\n            State: DISABLED\n",
			wantNotice: "template.yaml:17:20: Resources.Fn.Properties.Events.Hourly.Properties.State: function Fn: event Hourly is disabled (State: DISABLED): no schedule is made"},
		{name: "v2 one-time",
			props:      v2 + "            ScheduleExpression: at(2026-12-07T12:00:00)\n",
			wantNotice: "template.yaml:16:33: Resources.Fn.Properties.Events.Hourly.Properties.ScheduleExpression: function Fn: event Hourly: one-time schedules (at(2026-12-07T12:00:00)) are not served locally: skipped"},
		{name: "two events",
			props: events + "            Schedule: rate(5 minutes)\n" + v2 + "            ScheduleExpression: cron(0 0 * * ? *)\n",
			want:  []spec.Schedule{{Expression: "rate(5 minutes)"}, {Expression: "cron(0 0 * * ? *)"}}},
		{name: "no expression",
			props:     events + "            Input: '{}'\n",
			wantError: "template.yaml:14:11: Resources.Fn.Properties.Events.Nightly: function Fn: event Nightly: a Schedule event names its schedule in Schedule, such as rate(5 minutes) or cron(0 12 * * ? *)"},
		{name: "input not JSON",
			props:     events + "            Schedule: rate(5 minutes)\n            Input: '{report: daily}'\n",
			wantError: `template.yaml:17:20: Resources.Fn.Properties.Events.Nightly.Properties.Input: function Fn: event Nightly: Input: want JSON text, such as '{"report": "daily"}': invalid character 'r' looking for beginning of object key string`},
		{name: "a year",
			props:     events + "            Schedule: cron(0 12 * * ? 2027)\n",
			wantError: `template.yaml:16:23: Resources.Fn.Properties.Events.Nightly.Properties.Schedule: "cron(0 12 * * ? 2027)": the year must be *: schedules limited to some years are not supported`},
		{name: "L in a cron",
			props:     events + "            Schedule: cron(0 12 L * ? *)\n",
			wantError: `template.yaml:16:23: Resources.Fn.Properties.Events.Nightly.Properties.Schedule: "cron(0 12 L * ? *)": the day of month field "L" uses L, W or #, which are not supported`},
		{name: "bad time zone",
			props:     v2 + "            ScheduleExpression: cron(0 0 * * ? *)\n            ScheduleExpressionTimezone: Mars/Olympus\n",
			wantError: `template.yaml:17:41: Resources.Fn.Properties.Events.Hourly.Properties.ScheduleExpressionTimezone: "Mars/Olympus" is not a time zone: want an IANA name such as Europe/Paris`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, notices, problem := readStack(t, asyncTemplate("", tt.props, ""))
			if problem != tt.wantError {
				t.Fatalf("error\ngot  %s\nwant %s", problem, tt.wantError)
			}
			if tt.wantNotice != "" && !strings.Contains(notices, tt.wantNotice) {
				t.Errorf("notices\n%s\nwant %s", notices, tt.wantNotice)
			}
			if s == nil {
				return
			}
			got := s.Functions["Fn"].Schedules
			if len(got) != len(tt.want) {
				t.Fatalf("schedules %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i].Expression != tt.want[i].Expression || got[i].TimeZone != tt.want[i].TimeZone || string(got[i].Input) != string(tt.want[i].Input) {
					t.Errorf("schedule %d: %+v (input %s), want %+v (input %s)", i, got[i], got[i].Input, tt.want[i], tt.want[i].Input)
				}
			}
			if strings.Contains(notices, "Schedule is not served") || strings.Contains(notices, "ScheduleV2 is not served") {
				t.Errorf("the event is reported not served:\n%s", notices)
			}
		})
	}
}

// TestEventInvokeConfig checks what a function's EventInvokeConfig (its own, from Globals, or an
// AWS::Lambda::EventInvokeConfig's) gives its async settings, and what is skipped or refused.
func TestEventInvokeConfig(t *testing.T) {
	const eic = "      EventInvokeConfig:\n"
	const queue = "  Failures:\n    Type: AWS::SQS::Queue\n"
	defaults := spec.DefaultAsyncSettings()
	with := func(f func(*spec.AsyncSettings)) *spec.AsyncSettings {
		a := defaults
		f(&a)
		return &a
	}
	tests := []struct {
		name, globals, props, extra string
		want                        *spec.AsyncSettings // Fn's
		wantNotice, wantError       string
	}{
		{name: "everything",
			props: eic + "        MaximumEventAgeInSeconds: 3600\n        MaximumRetryAttempts: 1\n        DestinationConfig:\n" +
				"          OnSuccess: {Type: Lambda, Destination: !GetAtt Notify.Arn}\n" +
				"          OnFailure: {Type: Lambda, Destination: arn:aws:lambda:eu-west-1:123456789012:function:failures}\n",
			want: with(func(a *spec.AsyncSettings) {
				a.MaximumEventAge, a.MaximumRetryAttempts = spec.Duration(time.Hour), 1
				a.OnSuccess, a.OnFailure = "function:notify", "arn:aws:lambda:eu-west-1:123456789012:function:failures"
			})},
		{name: "ref and long-form GetAtt",
			props: eic + "        MaximumRetryAttempts: 0\n        DestinationConfig:\n" +
				"          OnSuccess: {Type: Lambda, Destination: !Ref Notify}\n" +
				"          OnFailure: {Type: Lambda, Destination: {'Fn::GetAtt': [Notify, Arn]}}\n",
			want: with(func(a *spec.AsyncSettings) {
				a.MaximumRetryAttempts, a.OnSuccess, a.OnFailure = 0, "function:notify", "function:notify"
			})},
		{name: "globals",
			globals: "Globals:\n  Function:\n    EventInvokeConfig:\n      MaximumRetryAttempts: 0\n      MaximumEventAgeInSeconds: 60\n",
			props:   eic + "        MaximumRetryAttempts: 2\n",
			want:    with(func(a *spec.AsyncSettings) { a.MaximumEventAge = spec.Duration(time.Minute) })},
		{name: "queue destination",
			props:      eic + "        MaximumRetryAttempts: 1\n        DestinationConfig:\n          OnFailure: {Type: SQS, Destination: !GetAtt Failures.Arn}\n",
			extra:      queue,
			want:       with(func(a *spec.AsyncSettings) { a.MaximumRetryAttempts = 1 }),
			wantNotice: "template.yaml:16:22: Resources.Fn.Properties.EventInvokeConfig.DestinationConfig.OnFailure: function Fn: DestinationConfig.OnFailure: SQS destinations are not served locally: failed invocations' records go to the stack's dead-letter stream (gatehouse queues counts them)"},
		{name: "only a topic",
			props:      eic + "        DestinationConfig:\n          OnSuccess: {Type: SNS}\n",
			wantNotice: "function Fn: DestinationConfig.OnSuccess: SNS destinations are not served locally: successful invocations send no record"},
		{name: "age out of range",
			props:     eic + "        MaximumEventAgeInSeconds: 30\n",
			wantError: `template.yaml:14:35: Resources.Fn.Properties.EventInvokeConfig.MaximumEventAgeInSeconds: function Fn: MaximumEventAgeInSeconds "30": want 60 to 21600 seconds`},
		{name: "retries out of range",
			props:     eic + "        MaximumRetryAttempts: 3\n",
			wantError: `template.yaml:14:31: Resources.Fn.Properties.EventInvokeConfig.MaximumRetryAttempts: function Fn: MaximumRetryAttempts "3": want 0 to 2`},
		{name: "lambda destination not a function",
			props:     eic + "        DestinationConfig:\n          OnSuccess: {Type: Lambda, Destination: !GetAtt Failures.Arn}\n",
			extra:     queue,
			wantError: `template.yaml:15:50: Resources.Fn.Properties.EventInvokeConfig.DestinationConfig.OnSuccess.Destination: function Fn: DestinationConfig.OnSuccess: "arn:aws:local:us-east-1:000000000000:Failures" is not a Lambda function: want its ARN, !GetAtt FUNCTION.Arn or !Ref FUNCTION`},
		{name: "lambda destination missing",
			props:     eic + "        DestinationConfig:\n          OnSuccess: {Type: Lambda}\n",
			wantError: `template.yaml:15:22: Resources.Fn.Properties.EventInvokeConfig.DestinationConfig.OnSuccess: function Fn: DestinationConfig.OnSuccess: a Lambda destination names its function in Destination: its ARN, !GetAtt FUNCTION.Arn or !Ref FUNCTION`},
		{name: "unknown type",
			props:     eic + "        DestinationConfig:\n          OnSuccess: {Type: Kinesis, Destination: x}\n",
			wantError: `template.yaml:15:29: Resources.Fn.Properties.EventInvokeConfig.DestinationConfig.OnSuccess.Type: function Fn: DestinationConfig.OnSuccess: Type "Kinesis": want Lambda, SQS, SNS, EventBridge or S3Bucket`},
		{name: "resource",
			extra: "  FnConfig:\n    Type: AWS::Lambda::EventInvokeConfig\n    Properties:\n      FunctionName: !Ref Fn\n      Qualifier: $LATEST\n" +
				"      MaximumRetryAttempts: 0\n      DestinationConfig:\n        OnFailure: {Destination: !GetAtt Notify.Arn}\n        OnSuccess: {Destination: !GetAtt Failures.Arn}\n" + queue,
			want:       with(func(a *spec.AsyncSettings) { a.MaximumRetryAttempts, a.OnFailure = 0, "function:notify" }),
			wantNotice: "template.yaml:28:20: Resources.FnConfig.Properties.DestinationConfig.OnSuccess: EventInvokeConfig FnConfig: DestinationConfig.OnSuccess: SQS destinations are not served locally: successful invocations send no record"},
		{name: "resource with an alias",
			extra:      "  FnConfig:\n    Type: AWS::Lambda::EventInvokeConfig\n    Properties:\n      FunctionName: !Ref Fn\n      Qualifier: live\n      MaximumRetryAttempts: 1\n",
			want:       with(func(a *spec.AsyncSettings) { a.MaximumRetryAttempts = 1 }),
			wantNotice: "template.yaml:24:18: Resources.FnConfig.Properties.Qualifier: EventInvokeConfig FnConfig: the settings of qualifier live apply to every asynchronous invocation of function Fn: Gatehouse keeps one configuration per function"},
		{name: "resource for another function",
			extra:      "  FnConfig:\n    Type: AWS::Lambda::EventInvokeConfig\n    Properties:\n      FunctionName: elsewhere\n      Qualifier: $LATEST\n      MaximumRetryAttempts: 1\n",
			wantNotice: `template.yaml:23:21: Resources.FnConfig.Properties.FunctionName: EventInvokeConfig FnConfig: FunctionName "elsewhere" is not a function of the template: skipped`},
		{name: "two configurations",
			props:     eic + "        MaximumRetryAttempts: 1\n",
			extra:     "  FnConfig:\n    Type: AWS::Lambda::EventInvokeConfig\n    Properties:\n      FunctionName: !Ref Fn\n      Qualifier: $LATEST\n      MaximumRetryAttempts: 0\n",
			wantError: "template.yaml:23:5: Resources.FnConfig: EventInvokeConfig FnConfig: function Fn already has an event invoke configuration (its EventInvokeConfig): Gatehouse keeps one per function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, notices, problem := readStack(t, asyncTemplate(tt.globals, tt.props, tt.extra))
			if problem != tt.wantError {
				t.Fatalf("error\ngot  %s\nwant %s", problem, tt.wantError)
			}
			if tt.wantNotice != "" && !strings.Contains(notices, tt.wantNotice) {
				t.Errorf("notices\n%s\nwant %s", notices, tt.wantNotice)
			}
			if strings.Contains(notices, "EventInvokeConfig is not served") {
				t.Errorf("EventInvokeConfig is reported not served:\n%s", notices)
			}
			if s == nil {
				return
			}
			got := s.Functions["Fn"].Async
			switch {
			case tt.want == nil && got != nil:
				t.Errorf("async %+v, want none", *got)
			case tt.want != nil && (got == nil || *got != *tt.want):
				t.Errorf("async %+v, want %+v", got, *tt.want)
			}
			if a := s.Functions["notify"].Async; a != nil && tt.globals == "" {
				t.Errorf("notify has async settings %+v", *a)
			}
		})
	}
}
