// Command version is a test function: it answers which version of it ran and the value of its COLOR
// variable, so tests can tell versions apart and count where traffic went. It prints one log line per
// invocation.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

type answer struct {
	Version string `json:"version"`
	Color   string `json:"color"`
}

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (answer, error) {
	a := answer{Version: os.Getenv("AWS_LAMBDA_FUNCTION_VERSION"), Color: os.Getenv("COLOR")}
	fmt.Printf("version %s (%s) served %s\n", a.Version, a.Color, req.RawPath)
	return a, nil
}

func main() { sdk.Start(handle) }
