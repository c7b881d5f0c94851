package serverless

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

// asyncService is a service whose function f has the settings props, an httpApi event and the
// events, beside a function notify.
func asyncService(props, events string) string {
	return "service: s\nprovider: {name: aws, runtime: python3.12}\nfunctions:\n  f:\n    handler: h.f\n" + props +
		"    events:\n      - httpApi: GET /a\n" + events + "  notify:\n    handler: h.notify\n"
}

// readStack reads serverless.yml as readService does, and returns the validated stack, the notices
// and the error (with the directory written $DIR/ taken off).
func readStack(t *testing.T, yml string) (*spec.Stack, string, string) {
	t.Helper()
	dir := testfix.WriteArchive(t, []txtar.File{{Name: "serverless.yml", Data: []byte(yml)}})
	file := filepath.Join(dir, "serverless.yml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Read(file, doc, Options{Env: func(string) (string, bool) { return "", false }})
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

// TestScheduleEvents checks what schedule events become, and what is skipped or refused, at
// serverless.yml's lines.
func TestScheduleEvents(t *testing.T) {
	tests := []struct {
		name, events          string
		want                  []spec.Schedule
		wantNotice, wantError string
	}{
		{name: "short form",
			events: "      - schedule: rate(5 minutes)\n",
			want:   []spec.Schedule{{Expression: "rate(5 minutes)"}}},
		{name: "long form",
			events: "      - schedule:\n          rate: cron(0 12 * * ? *)\n          enabled: true\n          name: noon\n          description: at noon\n          input:\n            report: daily\n            days: [1, 2]\n",
			want:   []spec.Schedule{{Expression: "cron(0 12 * * ? *)", Input: json.RawMessage(`{"report":"daily","days":[1,2]}`)}}},
		{name: "a list of rates",
			events: "      - schedule:\n          rate: [rate(10 minutes), 'cron(0 0 * * ? *)']\n          input: '{\"n\": 1}'\n",
			want: []spec.Schedule{{Expression: "rate(10 minutes)", Input: json.RawMessage(`{"n":1}`)},
				{Expression: "cron(0 0 * * ? *)", Input: json.RawMessage(`{"n":1}`)}}},
		{name: "time zone",
			events: "      - schedule: {method: scheduler, rate: ['cron(30 8 ? * MON-FRI *)', rate(1 hour)], timezone: America/New_York}\n",
			want:   []spec.Schedule{{Expression: "cron(30 8 ? * MON-FRI *)", TimeZone: "America/New_York"}, {Expression: "rate(1 hour)"}}},
		{name: "two events",
			events: "      - schedule: rate(1 day)\n      - schedule: {rate: rate(2 days)}\n",
			want:   []spec.Schedule{{Expression: "rate(1 day)"}, {Expression: "rate(2 days)"}}},
		{name: "disabled",
			events:     "      - schedule: {rate: rate(1 day), enabled: false}\n",
			wantNotice: "serverless.yml:8:48: functions.f.events[1].schedule.enabled: function f: the schedule is disabled (enabled: false): no schedule is made"},
		{name: "one-time",
			events:     "      - schedule: {method: scheduler, rate: 'at(2026-12-07T12:00:00)'}\n",
			wantNotice: "serverless.yml:8:45: functions.f.events[1].schedule.rate: function f: one-time schedules (at(2026-12-07T12:00:00)) are not served locally: skipped"},
		{name: "input transformer",
			events:     "      - schedule: {rate: rate(1 day), inputPath: '$.detail'}\n",
			want:       []spec.Schedule{{Expression: "rate(1 day)"}},
			wantNotice: "serverless.yml:8:50: functions.f.events[1].schedule.inputPath: function f: the schedule's inputPath is not served locally: ignored (each firing passes input, or the Scheduled Event)"},
		{name: "no rate",
			events:    "      - schedule: {input: {a: 1}}\n",
			wantError: "serverless.yml:8:19: functions.f.events[1].schedule: function f: schedule: want rate(…) or cron(…), or {rate, enabled, input}"},
		{name: "input not JSON",
			events:    "      - schedule: {rate: rate(1 day), input: 'report=daily'}\n",
			wantError: "serverless.yml:8:46: functions.f.events[1].schedule.input: function f: schedule input: want a mapping, or JSON text: invalid character 'r' looking for beginning of value"},
		{name: "a year",
			events:    "      - schedule: cron(0 12 * * ? 2027)\n",
			wantError: `serverless.yml:8:19: functions.f.events[1].schedule: "cron(0 12 * * ? 2027)": the year must be *: schedules limited to some years are not supported`},
		{name: "not an expression",
			events:    "      - schedule: every 5 minutes\n",
			wantError: `serverless.yml:8:19: functions.f.events[1].schedule: "every 5 minutes" is not a schedule expression: want rate(5 minutes) or cron(0 12 * * ? *)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, notices, problem := readStack(t, asyncService("", tt.events))
			if problem != tt.wantError {
				t.Fatalf("error\ngot  %s\nwant %s", problem, tt.wantError)
			}
			if tt.wantNotice != "" && !strings.Contains(notices, tt.wantNotice) {
				t.Errorf("notices\n%s\nwant %s", notices, tt.wantNotice)
			}
			if strings.Contains(notices, "schedule events are not served") {
				t.Errorf("the event is reported not served:\n%s", notices)
			}
			if s == nil {
				return
			}
			got := s.Functions["f"].Schedules
			if len(got) != len(tt.want) {
				t.Fatalf("schedules %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i].Expression != tt.want[i].Expression || got[i].TimeZone != tt.want[i].TimeZone || string(got[i].Input) != string(tt.want[i].Input) {
					t.Errorf("schedule %d: %+v (input %s), want %+v (input %s)", i, got[i], got[i].Input, tt.want[i], tt.want[i].Input)
				}
			}
		})
	}
}

// TestAsyncSettings checks what a function's maximumRetryAttempts, maximumEventAge and
// destinations give its async settings, and what is skipped or refused.
func TestAsyncSettings(t *testing.T) {
	with := func(f func(*spec.AsyncSettings)) *spec.AsyncSettings {
		a := spec.DefaultAsyncSettings()
		f(&a)
		return &a
	}
	tests := []struct {
		name, props           string
		want                  *spec.AsyncSettings
		wantNotice, wantError string
	}{
		{name: "everything",
			props: "    maximumRetryAttempts: 1\n    maximumEventAge: 7200\n    destinations:\n      onSuccess: notify\n" +
				"      onFailure: arn:aws:lambda:us-east-1:123456789012:function:failures\n",
			want: with(func(a *spec.AsyncSettings) {
				a.MaximumRetryAttempts, a.MaximumEventAge = 1, spec.Duration(2*time.Hour)
				a.OnSuccess, a.OnFailure = "function:notify", "arn:aws:lambda:us-east-1:123456789012:function:failures"
			})},
		{name: "a function of the service by its ARN",
			props: "    maximumRetryAttempts: 0\n    destinations:\n      onFailure: arn:aws:lambda:us-east-1:000000000000:function:s-dev-notify\n",
			want:  with(func(a *spec.AsyncSettings) { a.MaximumRetryAttempts, a.OnFailure = 0, "function:notify" })},
		{name: "typed destinations",
			props: "    destinations:\n      onSuccess: {type: function, arn: notify}\n      onFailure: {type: sqs, arn: {'Fn::GetAtt': [Failures, Arn]}}\n",
			want:  with(func(a *spec.AsyncSettings) { a.OnSuccess = "function:notify" }),
			wantNotice: "serverless.yml:8:35: functions.f.destinations.onFailure.arn: function f: destinations.onFailure: sqs destinations are not served locally: " +
				"failed invocations' records go to the stack's dead-letter stream (gatehouse queues counts them)"},
		{name: "a queue",
			props:      "    maximumEventAge: 60\n    destinations:\n      onFailure: arn:aws:sqs:us-east-1:000000000000:failures\n",
			want:       with(func(a *spec.AsyncSettings) { a.MaximumEventAge = spec.Duration(time.Minute) }),
			wantNotice: "serverless.yml:8:18: functions.f.destinations.onFailure: function f: destinations.onFailure: SQS destinations are not served locally: failed invocations' records go to the stack's dead-letter stream (gatehouse queues counts them)"},
		{name: "only a topic",
			props:      "    destinations:\n      onSuccess: arn:aws:sns:us-east-1:000000000000:done\n",
			wantNotice: "serverless.yml:7:18: functions.f.destinations.onSuccess: function f: destinations.onSuccess: SNS destinations are not served locally: successful invocations send no record"},
		{name: "unknown function",
			props:     "    destinations:\n      onSuccess: notfy\n",
			wantError: `serverless.yml:7:18: functions.f.destinations.onSuccess: function f: destinations.onSuccess: no function named "notfy" in functions (defined: f, notify)`},
		{name: "retries out of range",
			props:     "    maximumRetryAttempts: 5\n",
			wantError: `serverless.yml:6:27: functions.f.maximumRetryAttempts: function f: maximumRetryAttempts "5": want 0 to 2`},
		{name: "age out of range",
			props:     "    maximumEventAge: 86400\n",
			wantError: `serverless.yml:6:22: functions.f.maximumEventAge: function f: maximumEventAge "86400": want 60 to 21600 seconds`},
		{name: "unknown key",
			props:     "    destinations:\n      onTimeout: notify\n",
			wantError: `serverless.yml:7:18: functions.f.destinations.onTimeout: function f: destinations.onTimeout: unknown key: want onSuccess or onFailure`},
		{name: "unknown type",
			props:     "    destinations:\n      onSuccess: {type: kinesis, arn: 'arn:aws:kinesis:us-east-1:000000000000:stream/s'}\n",
			wantError: `serverless.yml:7:25: functions.f.destinations.onSuccess.type: function f: destinations.onSuccess: type "kinesis": want function, sqs, sns or eventBus`},
		{name: "not a lambda ARN",
			props:     "    destinations:\n      onSuccess: 'arn:aws:lambda:us-east-1:000000000000:layer:x'\n",
			wantError: `serverless.yml:7:18: functions.f.destinations.onSuccess: function f: destinations.onSuccess: "arn:aws:lambda:us-east-1:000000000000:layer:x" is not a Lambda function's ARN: want arn:aws:lambda:REGION:ACCOUNT:function:NAME`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, notices, problem := readStack(t, asyncService(tt.props, ""))
			if problem != tt.wantError {
				t.Fatalf("error\ngot  %s\nwant %s", problem, tt.wantError)
			}
			if tt.wantNotice != "" && !strings.Contains(notices, tt.wantNotice) {
				t.Errorf("notices\n%s\nwant %s", notices, tt.wantNotice)
			}
			if s == nil {
				return
			}
			got := s.Functions["f"].Async
			switch {
			case tt.want == nil && got != nil:
				t.Errorf("async %+v, want none", *got)
			case tt.want != nil && (got == nil || *got != *tt.want):
				t.Errorf("async %+v, want %+v", got, *tt.want)
			}
			if a := s.Functions["notify"].Async; a != nil {
				t.Errorf("notify has async settings %+v", *a)
			}
		})
	}
}
