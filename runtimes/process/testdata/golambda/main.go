// Command golambda is a provided.al2023 function built with github.com/aws/aws-lambda-go, unchanged
// from how one is built for Lambda: runtimes/process's tests run it to show that such a bootstrap works.
package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Name string `json:"name"`
	Fail bool   `json:"fail"`
}

type reply struct {
	Greeting     string `json:"greeting"`
	RequestID    string `json:"requestId"`
	FunctionArn  string `json:"functionArn"`
	FunctionName string `json:"functionName"`
	DeadlineMs   int64  `json:"deadlineMs"`
}

func handle(ctx context.Context, ev event) (reply, error) {
	if ev.Fail {
		return reply{}, errors.New("failed as asked")
	}
	lc, _ := lambdacontext.FromContext(ctx)
	dl, _ := ctx.Deadline()
	return reply{
		Greeting:     "hello " + ev.Name,
		RequestID:    lc.AwsRequestID,
		FunctionArn:  lc.InvokedFunctionArn,
		FunctionName: os.Getenv("AWS_LAMBDA_FUNCTION_NAME"),
		DeadlineMs:   dl.Round(time.Millisecond).UnixMilli(),
	}, nil
}

func main() { lambda.Start(handle) }
