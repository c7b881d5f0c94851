// Command respond is a test function: it returns the request body, unchanged, as its response payload,
// so a test can make the gateway map any response a function might produce. A header x-sleep-ms makes it
// wait first; a header x-report-length makes it answer {"length": N} with the body's length instead.
package main

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (json.RawMessage, error) {
	if ms, err := strconv.Atoi(req.Headers["x-sleep-ms"]); err == nil {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	if req.Headers["x-report-length"] != "" {
		return json.RawMessage(`{"length":` + strconv.Itoa(len(req.Body)) + `}`), nil
	}
	return json.RawMessage(req.Body), nil
}

func main() { sdk.Start(handle) }
