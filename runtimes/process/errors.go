package process

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

var (
	// ErrInit: the process failed its init phase. It posted /runtime/init/error, exited, or did not ask
	// for its first invocation within Config.InitTimeout. The error is an *InitError.
	ErrInit = errors.New("runtime init failed")
	// ErrFunction: the function posted /runtime/invocation/{id}/error. The error is a *FunctionError.
	ErrFunction = errors.New("function error")
	// ErrTimeout: the invocation's deadline (or the init timeout) passed; the process group was killed.
	ErrTimeout = errors.New("function timed out")
	// ErrExited: the process is gone (it exited, was killed, or was closed). Invoke's error is an
	// *ExitError when the process exited by itself.
	ErrExited = errors.New("runtime process exited")
	// ErrTooLarge: the function's response (or error) body is over MaxResponseBytes.
	ErrTooLarge = errors.New("function response too large")
	// ErrBusy: Invoke was called while another invocation of the same process was in flight; a process
	// serves one invocation at a time.
	ErrBusy = errors.New("runtime process busy: one invocation at a time")
)

// FunctionError is what a function reported through /runtime/invocation/{id}/error (Lambda's error
// shape: errorType, errorMessage, stackTrace). It is ErrFunction.
type FunctionError struct {
	Type    string
	Message string
	// StackTrace is the body's "stackTrace" (Python, Go) or "trace" (Node.js) list.
	StackTrace []string
	// Raw is the body as posted, at most MaxResponseBytes.
	Raw []byte
}

func (e *FunctionError) Error() string {
	switch {
	case e.Type != "" && e.Message != "":
		return fmt.Sprintf("%s: %s: %s", ErrFunction, e.Type, e.Message)
	case e.Type != "":
		return fmt.Sprintf("%s: %s", ErrFunction, e.Type)
	case e.Message != "":
		return fmt.Sprintf("%s: %s", ErrFunction, e.Message)
	}
	return ErrFunction.Error()
}

// Is reports ErrFunction.
func (e *FunctionError) Is(target error) bool { return target == ErrFunction }

// InitError is a failed init phase. It is ErrInit, and also what Cause is (ErrTimeout, an *ExitError,
// the context's error).
type InitError struct {
	// Type, Message and StackTrace are the /runtime/init/error body's errorType, errorMessage and
	// stackTrace (or trace), when the process posted one; otherwise Gatehouse's description:
	// Runtime.ExitError or Sandbox.Timeout.
	Type       string
	Message    string
	StackTrace []string
	// Raw is the /runtime/init/error body as posted; nil when there was none.
	Raw []byte
	// Cause is why init ended without a posted error: an *ExitError, ErrTimeout or the context's error.
	Cause error
}

func (e *InitError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInit.Error())
	if e.Type != "" {
		b.WriteString(": " + e.Type)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Is reports ErrInit.
func (e *InitError) Is(target error) bool { return target == ErrInit }

// Unwrap returns the cause.
func (e *InitError) Unwrap() error { return e.Cause }

// ExitError is a process that ended without Gatehouse ending it. It is ErrExited.
type ExitError struct {
	Pid int
	// Code is the exit status, or -1 when a signal ended the process.
	Code int
	// Signal is the signal that ended the process, or 0.
	Signal syscall.Signal
	// OutOfMemory: the process was ended by SIGKILL that Gatehouse did not send. The kernel's OOM killer
	// (or a memory cgroup's limit) is what sends it in practice, though another process could have.
	OutOfMemory bool
}

func (e *ExitError) Error() string {
	switch {
	case e.OutOfMemory:
		return fmt.Sprintf("%s: process %d killed by SIGKILL, not sent by Gatehouse: most likely out of memory", ErrExited, e.Pid)
	case e.Signal != 0:
		return fmt.Sprintf("%s: process %d killed by signal %d (%s)", ErrExited, e.Pid, int(e.Signal), e.Signal)
	}
	return fmt.Sprintf("%s: process %d exited with status %d", ErrExited, e.Pid, e.Code)
}

// Is reports ErrExited.
func (e *ExitError) Is(target error) bool { return target == ErrExited }

// ErrorType is Lambda's name for this failure: Runtime.OutOfMemory or Runtime.ExitError.
func (e *ExitError) ErrorType() string {
	if e.OutOfMemory {
		return "Runtime.OutOfMemory"
	}
	return "Runtime.ExitError"
}
