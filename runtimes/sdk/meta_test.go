package sdk

import (
	"encoding/json"
	"testing"
)

func TestParseInvocation(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"full", `{"requestId":"Mc7UVioPPHcEKPA=","functionName":"hello","functionVersion":"$LATEST","memoryLimitInMB":128,"deadlineMs":1795615593191,"traceparent":"00-a-b-01"}`},
		{"spaces", ` { "requestId" : "r" , "deadlineMs" : 5 } `},
		{"escapes fall back", `{"requestId":"a\"b","functionName":"f\u00e9"}`},
		{"unknown keys", `{"other":"x","requestId":"r","n":-3}`},
		{"empty", `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got, want Invocation
			if err := parseInvocation([]byte(tt.in), &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.in), &want); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

// A known name with a value of the other type is left to encoding/json, which refuses it.
func TestParseInvocationWrongType(t *testing.T) {
	for _, in := range []string{`{"requestId":5}`, `{"deadlineMs":"5"}`} {
		var got Invocation
		if err := parseInvocation([]byte(in), &got); err == nil {
			t.Errorf("%s: parsed as %+v, want encoding/json's error", in, got)
		}
	}
}

func FuzzParseInvocation(f *testing.F) {
	f.Add(`{"requestId":5}`)
	f.Add(`{"RequestId":"r"}`)
	f.Add(`{"requestId":"r","deadlineMs":12}`)
	f.Add(`{"requestId":"a\"b"}`)
	f.Add(`{`)
	f.Fuzz(func(t *testing.T, s string) {
		var got, want Invocation
		err := parseInvocation([]byte(s), &got)
		wantErr := json.Unmarshal([]byte(s), &want)
		if err == nil && wantErr == nil && got != want {
			t.Fatalf("%q: got %+v, want %+v", s, got, want)
		}
	})
}
