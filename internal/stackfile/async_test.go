package stackfile

import (
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/spec"
)

func TestFunctionAsyncAndSchedules(t *testing.T) {
	dir := stackDir(t)
	s, err := Parse("gatehouse.yaml", []byte(`version: 1
functions:
  hello:
    source: hello
    async:
      maximumRetryAttempts: 0
      maximumEventAge: 1h
      onFailure: function:echo
    schedules:
      - rate(5 minutes)
      - expression: cron(0 12 ? * MON-FRI *)
        input: {report: daily, n: 1}
        timezone: Europe/Paris
        missed: skip
  echo:
    source: echo
apis:
  web:
    type: http
    routes:
      GET /x: {function: hello}
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Functions["hello"]
	a := h.Async
	if a == nil || a.MaximumRetryAttempts != 0 || a.MaximumEventAge.D() != time.Hour || a.RetryDelay.D() != time.Minute || a.OnFailure != "function:echo" || a.OnSuccess != "" {
		t.Errorf("async %+v", a)
	}
	if s.Functions["echo"].Async != nil {
		t.Errorf("a function without async: has %+v, want nil (the defaults)", s.Functions["echo"].Async)
	}
	want := []spec.Schedule{{Expression: "rate(5 minutes)"},
		{Expression: "cron(0 12 ? * MON-FRI *)", Input: []byte(`{"report":"daily","n":1}`), TimeZone: "Europe/Paris", Missed: "skip"}}
	if len(h.Schedules) != 2 || h.Schedules[0].Expression != want[0].Expression || h.Schedules[0].Input != nil ||
		h.Schedules[1].Expression != want[1].Expression || string(h.Schedules[1].Input) != string(want[1].Input) ||
		h.Schedules[1].TimeZone != want[1].TimeZone || h.Schedules[1].Missed != want[1].Missed {
		t.Errorf("schedules %+v, want %+v", h.Schedules, want)
	}
}

func TestFunctionAsyncAndScheduleErrors(t *testing.T) {
	const head = "version: 1\napis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: hello}\nfunctions:\n  hello:\n    source: hello\n"
	tests := []struct{ name, yaml, want string }{
		{"retries", head + "    async: {maximumRetryAttempts: 3}\n", "functions.hello.async.maximumRetryAttempts: 3 is out of range: want 0 to 2"},
		{"age", head + "    async: {maximumEventAge: 30s}\n", "functions.hello.async.maximumEventAge: 30s is out of range: want 1m to 6h"},
		{"destination", head + "    async: {onFailure: queue:x}\n", `functions.hello.async.onFailure: "queue:x" is not a destination: want function:NAME or a Lambda function ARN`},
		{"unknown async key", head + "    async: {retries: 1}\n", "functions.hello.async.retries: unknown key"},
		{"rate unit", head + "    schedules: [rate(5 weeks)]\n", `functions.hello.schedules[0].expression: "rate(5 weeks)": the unit must be minute(s), hour(s) or day(s)`},
		{"rate zero", head + "    schedules: [rate(0 minutes)]\n", `functions.hello.schedules[0].expression: "rate(0 minutes)": the value must be a whole number of 1 or more`},
		{"cron fields", head + "    schedules: [\"cron(0 12 * * ?)\"]\n", `functions.hello.schedules[0].expression: "cron(0 12 * * ?)": want six fields`},
		{"cron year", head + "    schedules: [\"cron(0 12 * * ? 2027)\"]\n", `functions.hello.schedules[0].expression: "cron(0 12 * * ? 2027)": the year must be *`},
		{"cron L", head + "    schedules: [\"cron(0 12 L * ? *)\"]\n", `functions.hello.schedules[0].expression: "cron(0 12 L * ? *)": the day of month field "L" uses L, W or #, which are not supported`},
		{"not an expression", head + "    schedules: [every day]\n", `functions.hello.schedules[0].expression: "every day" is not a schedule expression`},
		{"timezone on a rate", head + "    schedules: [{expression: rate(1 hour), timezone: UTC}]\n", "functions.hello.schedules[0].timezone: only for cron expressions"},
		{"bad timezone", head + "    schedules: [{expression: \"cron(0 1 * * ? *)\", timezone: Mars/Base}]\n", `functions.hello.schedules[0].timezone: "Mars/Base" is not a time zone`},
		{"missed", head + "    schedules: [{expression: rate(1 hour), missed: all}]\n", `functions.hello.schedules[0].missed: "all": want once`},
		{"expression missing", head + "    schedules: [{input: {}}]\n", "functions.hello.schedules[0].expression: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("gatehouse.yaml", []byte(tt.yaml), stackDir(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// A stack of scheduled functions needs no API.
func TestScheduledStackWithoutAPIs(t *testing.T) {
	s, err := Parse("gatehouse.yaml", []byte("version: 1\nfunctions:\n  hello:\n    source: hello\n    schedules: [rate(1 hour)]\n"), stackDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.APIs) != 0 || len(s.Functions["hello"].Schedules) != 1 {
		t.Errorf("stack %+v", s)
	}
}
