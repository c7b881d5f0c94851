// Command hello_go is a Lambda handler for provided.al2023, built as `sam build` builds Go handlers:
// Gatehouse builds it into a bootstrap when the template is served.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handler(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	name := req.QueryStringParameters["name"]
	if name == "" {
		name = "world"
	}
	body, err := json.Marshal(map[string]string{"message": os.Getenv("GREETING") + ", " + name + "!", "runtime": "go"})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"content-type": "application/json"}, Body: string(body)}, nil
}

func main() { lambda.Start(handler) }
