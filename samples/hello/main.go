// Command hello is the smallest Gatehouse function: GET /hello answers {"message":"hello from gatehouse"}.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return events.APIGatewayV2HTTPResponse{
		StatusCode: 200,
		Headers:    map[string]string{"content-type": "application/json"},
		Body:       `{"message":"hello from gatehouse"}`,
	}, nil
}

func main() { sdk.Start(handle) }
