// Command wsbench is the function of the WebSocket benchmarks (ws_bench_test.go). $connect and
// $disconnect accept; a message answers the connection's id (a route with a route response sends it
// back); an invocation whose body holds "ids" broadcasts "data" to those connections with one
// sdk.Broadcast and answers how many were sent and how long the call took (µs): "10000 1234".
//
// It takes and answers API Gateway's WebSocket types, as a $connect function written for Lambda
// does, which the SDK decodes and encodes without reflection: the benchmarks measure the gateway
// rather than the guest's JSON work.
package main

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

// broadcast is the body of a broadcast invocation.
type broadcast struct {
	IDs  []string `json:"ids"`
	Data string   `json:"data"`
}

func handle(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	switch ev.RequestContext.EventType {
	case "MESSAGE":
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: ev.RequestContext.ConnectionID}, nil
	case "":
		var b broadcast
		if err := json.Unmarshal([]byte(ev.Body), &b); err != nil {
			return events.APIGatewayProxyResponse{}, err
		}
		start := time.Now()
		r, err := sdk.Broadcast(ctx, b.IDs, []byte(b.Data))
		if err != nil {
			return events.APIGatewayProxyResponse{}, err
		}
		took := time.Since(start).Microseconds()
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: strconv.Itoa(r.Sent) + " " + strconv.FormatInt(took, 10)}, nil
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

func main() { sdk.Start(handle) }
