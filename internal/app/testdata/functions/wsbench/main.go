// Command wsbench is the function of the WebSocket benchmarks (ws_bench_test.go). $connect and
// $disconnect accept; a message answers the connection's id (a route with a route response sends it
// back); an invocation whose event has "ids" broadcasts "data" to those connections with one
// sdk.Broadcast and answers how many were sent and how long the call took (µs): "10000 1234".
//
// It decodes only the fields it needs, so that the benchmarks measure the gateway rather than the
// guest's JSON work.
package main

import (
	"context"
	"strconv"
	"time"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

type event struct {
	RequestContext struct {
		EventType    string `json:"eventType"`
		ConnectionID string `json:"connectionId"`
	} `json:"requestContext"`
	IDs  []string `json:"ids"`
	Data string   `json:"data"`
}

type response struct {
	StatusCode int    `json:"statusCode"`
	Body       string `json:"body,omitempty"`
}

func handle(ctx context.Context, ev event) (response, error) {
	if ev.IDs != nil {
		start := time.Now()
		r, err := sdk.Broadcast(ctx, ev.IDs, []byte(ev.Data))
		if err != nil {
			return response{}, err
		}
		took := time.Since(start).Microseconds()
		return response{StatusCode: 200, Body: strconv.Itoa(r.Sent) + " " + strconv.FormatInt(took, 10)}, nil
	}
	if ev.RequestContext.EventType == "MESSAGE" {
		return response{StatusCode: 200, Body: ev.RequestContext.ConnectionID}, nil
	}
	return response{StatusCode: 200}, nil
}

func main() { sdk.Start(handle) }
