// Command probe is the cluster tests' function: it answers which version of it ran and the value of
// its COLOR variable, so that a test can tell a new deploy from the old one, after sleeping the
// milliseconds of the query's ms parameter (at most 10 s), so that a test can keep invocations in
// flight.
package main

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

type answer struct {
	Version string `json:"version"`
	Color   string `json:"color"`
	SleptMS int    `json:"sleptMs,omitempty"`
}

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ms, _ := strconv.Atoi(req.QueryStringParameters["ms"])
	ms = max(0, min(ms, 10000))
	if ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	body, err := json.Marshal(answer{Version: os.Getenv("AWS_LAMBDA_FUNCTION_VERSION"), Color: os.Getenv("COLOR"), SleptMS: ms})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: 200,
		Headers:    map[string]string{"content-type": "application/json"},
		Body:       string(body),
	}, nil
}

func main() { sdk.Start(handle) }
