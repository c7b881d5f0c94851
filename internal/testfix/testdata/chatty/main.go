// Command chatty is a test function that writes to its output streams: the event is
// {"lines": N, "size": S, "stderr": bool, "tail": "text without a newline"}, and it writes N lines of S
// bytes each ("<i>:xxxx…"), then the tail.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

type event struct {
	Lines  int    `json:"lines"`
	Size   int    `json:"size"`
	Stderr bool   `json:"stderr"`
	Tail   string `json:"tail"`
}

func handle(ctx context.Context, ev event) (string, error) {
	w := os.Stdout
	if ev.Stderr {
		w = os.Stderr
	}
	for i := range ev.Lines {
		prefix := fmt.Sprintf("%d:", i)
		fmt.Fprintln(w, prefix+strings.Repeat("x", max(ev.Size-len(prefix), 0)))
	}
	fmt.Fprint(w, ev.Tail)
	return "ok", nil
}

func main() { sdk.Start(handle) }
