// Command chatpage serves the sample chat's browser page at GET /chat.html. The page connects to the
// WebSocket API at /chat on the same host and port.
package main

import (
	"context"
	_ "embed"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

//go:embed chat.html
var page string

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return events.APIGatewayV2HTTPResponse{
		StatusCode: 200,
		Headers:    map[string]string{"content-type": "text/html; charset=utf-8", "cache-control": "no-cache"},
		Body:       page,
	}, nil
}

func main() { sdk.Start(handle) }
