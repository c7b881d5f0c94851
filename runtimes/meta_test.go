package runtimes

import (
	"encoding/json"
	"testing"
	"time"
)

// The metadata written by hand decodes to what it carries, whatever the characters.
func TestEncodeMeta(t *testing.T) {
	type wire struct {
		RequestID       string `json:"requestId"`
		FunctionName    string `json:"functionName"`
		FunctionVersion string `json:"functionVersion"`
		MemoryMB        int    `json:"memoryLimitInMB"`
		DeadlineMs      int64  `json:"deadlineMs"`
		TraceParent     string `json:"traceparent"`
	}
	deadline := time.UnixMilli(1795615593191)
	for _, tp := range []string{"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", `a"b\c`, "tab\there", "é ✓ <&>", "\x00\x1f\x7f", "bad \xff utf-8"} {
		i := &Instance{cfg: InstanceConfig{FunctionName: "hello", Version: "$LATEST", MemoryMB: 128}}
		b := i.encodeMeta(Meta{RequestID: "Mc7UVioPPHcEKPA=", Deadline: deadline, TraceParent: tp})
		var got wire
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("traceparent %q: %s does not decode: %v", tp, b, err)
		}
		want := wire{"Mc7UVioPPHcEKPA=", "hello", "$LATEST", 128, deadline.UnixMilli(), tp}
		if tp == "bad \xff utf-8" {
			want.TraceParent = "bad \ufffd utf-8" // as encoding/json writes invalid UTF-8
		}
		if got != want {
			t.Errorf("traceparent %q: got %+v, want %+v", tp, got, want)
		}
	}
}
