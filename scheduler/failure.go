package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/runtimes"
)

// failure is what a failed invocation tells its caller (as the bus error's detail, which `gatehouse
// invoke` shows) and the function's logs: Lambda's error shape.
type failure struct {
	ErrorType    string   `json:"errorType"`
	ErrorMessage string   `json:"errorMessage"`
	StackTrace   []string `json:"stackTrace,omitempty"`
}

// maxTraceFrames bounds the frames of a trap's stack trace a failure keeps.
const maxTraceFrames = 20

// failureOf describes err, which an invocation of a function with timeout failed with.
func failureOf(err error, timeout time.Duration) failure {
	var fe *runtimes.FunctionError
	switch {
	case errors.As(err, &fe):
		return failure{ErrorType: fe.Type, ErrorMessage: fe.Message, StackTrace: fe.StackTrace}
	case errors.Is(err, runtimes.ErrTimeout):
		return failure{ErrorType: "Sandbox.Timedout", ErrorMessage: fmt.Sprintf("Task timed out after %.2f seconds", timeout.Seconds())}
	case errors.Is(err, runtimes.ErrResponseTooLarge):
		return failure{ErrorType: "Function.ResponseSizeTooLarge", ErrorMessage: err.Error()}
	}
	message, frames := splitTrace(err.Error())
	message = strings.TrimPrefix(message, runtimes.ErrTrap.Error()+": ")
	f := failure{ErrorType: "Runtime.Trap", ErrorMessage: message, StackTrace: frames}
	switch {
	case errors.Is(err, runtimes.ErrCallDepth):
		f.ErrorType = "Runtime.CallDepthExceeded"
	case strings.Contains(message, "out of memory"):
		f.ErrorType = "Runtime.OutOfMemory"
	case !errors.Is(err, runtimes.ErrTrap):
		f.ErrorType = "Runtime.Unknown"
	}
	return f
}

// splitTrace parts a sandbox error into its message and the frames of the wasm stack trace after it.
func splitTrace(text string) (string, []string) {
	message, trace, _ := strings.Cut(text, "\nwasm stack trace:\n")
	message = strings.TrimSuffix(message, " (recovered by wazero)")
	var frames []string
	for _, line := range strings.Split(trace, "\n") {
		if line = strings.TrimSpace(line); line != "" && len(frames) < maxTraceFrames {
			frames = append(frames, line)
		}
	}
	return message, frames
}

// invocationFailure is a bus sentinel whose text is a failure, as JSON: the detail the bus carries.
type invocationFailure struct {
	sentinel error
	detail   string
}

func (e *invocationFailure) Error() string { return e.detail }
func (e *invocationFailure) Unwrap() error { return e.sentinel }

func newInvocationFailure(sentinel error, f failure) error {
	b, _ := json.Marshal(f)
	return &invocationFailure{sentinel: sentinel, detail: string(b)}
}
