// Command asyncbench is the function of BenchmarkAsync (async_bench_test.go): it answers {} at once.
// An event {"t": N}, N being when the benchmark queued it (Unix nanoseconds), also prints one line,
// "BENCHSTART N NOW", NOW being the guest's clock (Unix nanoseconds, the host's real time) as the
// handler began. Printing it makes the invocation write its platform START line too (a warm
// invocation that prints nothing writes no log lines), whose time is when the worker began the
// invocation: the benchmark reads both from the function's logs.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

func handle(ctx context.Context, event json.RawMessage) (json.RawMessage, error) {
	now := time.Now().UnixNano()
	var probe struct {
		T int64 `json:"t"`
	}
	if json.Unmarshal(event, &probe) == nil && probe.T != 0 {
		fmt.Printf("BENCHSTART %d %d\n", probe.T, now)
	}
	return json.RawMessage(`{}`), nil
}

func main() { sdk.Start(handle) }
