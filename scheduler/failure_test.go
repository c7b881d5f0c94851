package scheduler

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/runtimes"
)

// TestFailureOf: each way an invocation fails is described as Lambda describes it, with the guest's
// stack where there is one.
func TestFailureOf(t *testing.T) {
	trace := "\nwasm stack trace:\n\t.main.handle(i32) i32\n\t.runtime.main(i32) i32"
	for _, tt := range []struct {
		name         string
		err          error
		typ, message string
		frames       int
	}{
		{"function error", &runtimes.FunctionError{Type: "*errors.errorString", Message: "boom"}, "*errors.errorString", "boom", 0},
		{"panic", &runtimes.FunctionError{Type: "Runtime.Panic", Message: "oops", StackTrace: []string{"goroutine 1"}}, "Runtime.Panic", "oops", 1},
		{"timeout", runtimes.ErrTimeout, "Sandbox.Timedout", "Task timed out after 3.00 seconds", 0},
		{"trap", fmt.Errorf("%w: %w", runtimes.ErrTrap, errors.New("wasm error: unreachable"+trace)), "Runtime.Trap", "wasm error: unreachable", 2},
		{"call depth", fmt.Errorf("%w (recovered by wazero)"+trace, runtimes.ErrCallDepth), "Runtime.CallDepthExceeded", "call depth limit exceeded", 2},
		{"out of memory", fmt.Errorf("%w: %w", runtimes.ErrTrap, errors.New("fatal error: out of memory"+trace)), "Runtime.OutOfMemory", "fatal error: out of memory", 2},
		{"too large", fmt.Errorf("%w: 7000000 bytes", runtimes.ErrResponseTooLarge), "Function.ResponseSizeTooLarge", "function response too large: 7000000 bytes", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := failureOf(tt.err, 3*time.Second)
			if f.ErrorType != tt.typ || f.ErrorMessage != tt.message || len(f.StackTrace) != tt.frames {
				t.Fatalf("%+v, want type %q, message %q and %d frames", f, tt.typ, tt.message, tt.frames)
			}
		})
	}
}
