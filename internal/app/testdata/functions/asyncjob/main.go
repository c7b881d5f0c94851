// Command asyncjob is a test function for asynchronous invocations. An event {"fail": true} makes it
// fail; an invocation record (what a destination receives) is printed on one line, "RECORD {…}", so
// that a test finds it in the function's logs; any other event is answered {"done": EVENT}.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

func handle(ctx context.Context, event json.RawMessage) (json.RawMessage, error) {
	var probe struct {
		Fail           bool            `json:"fail"`
		RequestContext json.RawMessage `json:"requestContext"`
	}
	_ = json.Unmarshal(event, &probe)
	switch {
	case probe.Fail:
		return nil, errors.New("asked to fail")
	case probe.RequestContext != nil:
		var line bytes.Buffer
		if err := json.Compact(&line, event); err != nil {
			return nil, err
		}
		fmt.Println("RECORD " + line.String())
		return nil, nil
	}
	return json.RawMessage(`{"done":` + string(event) + `}`), nil
}

func main() { sdk.Start(handle) }
