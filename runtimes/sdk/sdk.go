// Package sdk is the Gatehouse SDK for functions written in Go.
//
// A function is a handler registered with [Start], the way an AWS Lambda function calls lambda.Start:
//
//	func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
//		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "hello"}, nil
//	}
//
//	func main() { sdk.Start(handle) }
//
// `gatehouse build` and `gatehouse up` compile the package as a WebAssembly reactor (GOOS=wasip1,
// -buildmode=c-shared, build tag gatehouse_reactor, under which this package exports the reactor ABI).
// A reactor's main is never called by the host, so the build adds one file that calls main from an init
// function; in reactor mode Start registers the handler and returns at once. Built as an ordinary program
// (for wasip1 or natively), Start serves one event from standard input instead — the command ABI — which
// is handy for trying a function with `go run . < event.json`.
//
// The handler's context carries the invocation's deadline, and [FromContext] returns its request id and
// function name and version; lambdacontext.FromContext works too. A returned error makes the invocation
// fail (the client sees 500); a panic does as well, and the sandbox is then discarded.
package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Invocation describes the invocation a handler is serving.
type Invocation struct {
	RequestID       string `json:"requestId"`
	FunctionName    string `json:"functionName"`
	FunctionVersion string `json:"functionVersion"`
	MemoryLimitInMB int    `json:"memoryLimitInMB"`
	DeadlineMs      int64  `json:"deadlineMs"`
	TraceParent     string `json:"traceparent,omitempty"`
}

// Deadline returns the invocation's deadline, or the zero time when it has none.
func (inv Invocation) Deadline() time.Time {
	if inv.DeadlineMs == 0 {
		return time.Time{}
	}
	return time.UnixMilli(inv.DeadlineMs)
}

type invocationKey struct{}

// FromContext returns the invocation a handler's context belongs to.
func FromContext(ctx context.Context) (Invocation, bool) {
	inv, ok := ctx.Value(invocationKey{}).(Invocation)
	return inv, ok
}

// rawHandler is a handler on encoded events and responses; it appends the response to dst.
type rawHandler func(ctx context.Context, event, dst []byte) ([]byte, error)

// state is the one handler of this guest. A guest runs one invocation at a time.
var state struct {
	reactor      bool
	handler      rawHandler
	afterRestore []func()
}

// AfterRestore registers f to run when an instance of the function starts from a snapshot (the
// function's `snapStart` setting), after the restore and before its first invocation. Whatever the
// function's initialisation computed is the same in every instance started from one snapshot: a
// generator seeded then repeats its numbers from instance to instance, an id drawn then is shared.
// f is where to draw them again. Hooks run in the order they were registered; outside snapshots they
// never run.
func AfterRestore(f func()) {
	state.afterRestore = append(state.afterRestore, f)
}

// Start registers handler as the function. E is the event type (for HTTP APIs
// events.APIGatewayV2HTTPRequest) and R the response type (events.APIGatewayV2HTTPResponse, or any value
// that encodes to JSON: a bare object or string becomes a 200 response).
//
// In a reactor build Start returns at once; otherwise it serves the event on standard input, writes the
// response to standard output and exits.
func Start[E, R any](handler func(context.Context, E) (R, error)) {
	state.handler = func(ctx context.Context, raw, dst []byte) ([]byte, error) {
		var event E
		if err := decodeEvent(raw, &event); err != nil {
			return nil, fmt.Errorf("decoding event: %w", err)
		}
		resp, err := handler(ctx, event)
		if err != nil {
			return nil, err
		}
		return appendResponse(dst, resp)
	}
	if state.reactor {
		return
	}
	serveCommand()
}

// RunReactor is called by the file the builder adds to a reactor build: it marks the guest as a reactor
// and runs main, in which Start registers the handler. Function code does not call it.
func RunReactor(main func()) {
	state.reactor = true
	main()
	if state.handler == nil {
		panic("gatehouse: main did not call sdk.Start")
	}
}

// invoke runs the registered handler on one event and appends its response to dst.
func invoke(inv Invocation, event, dst []byte) (out []byte, err error) {
	ic := newInvocationContext(inv)
	defer ic.end(context.Canceled)
	ctx := lambdacontext.NewContext(ic, &lambdacontext.LambdaContext{AwsRequestID: inv.RequestID})
	// A warm instance's environment is fixed: the trace header changes with each invocation, as
	// Lambda's runtimes set it, for code (the AWS SDK, X-Ray clients) that reads it from there.
	if t := amznTraceID(inv.TraceParent); t != "" {
		os.Setenv("_X_AMZN_TRACE_ID", t)
	} else {
		os.Unsetenv("_X_AMZN_TRACE_ID")
	}
	return state.handler(ctx, event, dst)
}

// errorPayload is the JSON a failed invocation reports, shaped like Lambda's.
type errorPayload struct {
	ErrorType    string   `json:"errorType"`
	ErrorMessage string   `json:"errorMessage"`
	StackTrace   []string `json:"stackTrace,omitempty"`
}

func encodeError(err error) []byte {
	b, _ := json.Marshal(errorPayload{ErrorType: fmt.Sprintf("%T", err), ErrorMessage: err.Error()})
	return b
}

func encodePanic(v any) []byte {
	b, _ := json.Marshal(errorPayload{ErrorType: "Runtime.Panic", ErrorMessage: fmt.Sprint(v), StackTrace: []string{string(debug.Stack())}})
	return b
}

// serveCommand implements the command ABI: event on stdin, response on stdout, exit status 0; on failure
// the error JSON on stdout and exit status 1.
func serveCommand() {
	var inv Invocation
	if s := os.Getenv("GATEHOUSE_INVOCATION"); s != "" {
		_ = parseInvocation([]byte(s), &inv)
	}
	event, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse: reading event:", err)
		os.Exit(1)
	}
	var out []byte
	func() {
		defer func() {
			if v := recover(); v != nil {
				out, err = nil, fmt.Errorf("panic: %v", v)
			}
		}()
		out, err = invoke(inv, event, nil)
	}()
	if err != nil {
		os.Stdout.Write(encodeError(err))
		os.Exit(1)
	}
	os.Stdout.Write(out)
	os.Exit(0)
}

// amznTraceID is a W3C traceparent in the format of Lambda's _X_AMZN_TRACE_ID
// (Root=1-TTTTTTTT-TTTTTTTTTTTTTTTTTTTTTTTT;Parent=SSSSSSSSSSSSSSSS;Sampled=1); "" for none. Guest
// code carries no tracing library, so it is spelled out here (as internal/tracing spells it for the
// process runtimes).
func amznTraceID(traceparent string) string {
	if len(traceparent) != 55 || traceparent[2] != '-' || traceparent[35] != '-' || traceparent[52] != '-' {
		return ""
	}
	sampled := "0"
	if traceparent[53:] == "01" {
		sampled = "1"
	}
	return "Root=1-" + traceparent[3:11] + "-" + traceparent[11:35] + ";Parent=" + traceparent[36:52] + ";Sampled=" + sampled
}
