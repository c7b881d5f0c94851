// Command echo answers every request with the event it received, as JSON: a quick way to see exactly
// what a Gatehouse function is given.
//
// A request header x-echo-status sets the response status; x-echo-fail: error makes the function return
// an error, and x-echo-fail: panic makes it panic — useful to see how the gateway reports failures.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	switch req.Headers["x-echo-fail"] {
	case "error":
		return events.APIGatewayV2HTTPResponse{}, errors.New("echo was asked to fail")
	case "panic":
		panic("echo was asked to panic")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	status := 200
	if s, err := strconv.Atoi(req.Headers["x-echo-status"]); err == nil && s >= 100 && s <= 599 {
		status = s
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"content-type": "application/json"},
		Body:       string(body),
	}, nil
}

func main() { sdk.Start(handle) }
