// Command wsecho is a test function for WebSocket APIs. On $connect it refuses a client whose query
// has deny=STATUS with that status; a message answers with its own event (route, connection id,
// body), which a route with a route response sends back; $disconnect prints how the socket closed.
// A client that asks for subprotocols is answered with the first.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

type answer struct {
	RouteKey     string `json:"routeKey"`
	EventType    string `json:"eventType"`
	ConnectionID string `json:"connectionId"`
	Body         string `json:"body"`
	Stage        string `json:"stage"`
	Authorizer   any    `json:"authorizer,omitempty"`
}

func handle(ctx context.Context, raw json.RawMessage) (events.APIGatewayProxyResponse, error) {
	var ev events.APIGatewayWebsocketProxyRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	rc := ev.RequestContext
	switch rc.EventType {
	case "CONNECT":
		if s, err := strconv.Atoi(ev.QueryStringParameters["deny"]); err == nil {
			return events.APIGatewayProxyResponse{StatusCode: s, Body: "denied"}, nil
		}
		fmt.Printf("connect %s\n", rc.ConnectionID)
		// A client that asks for subprotocols gets the first one it names.
		if p := ev.Headers["Sec-Websocket-Protocol"]; p != "" {
			first, _, _ := strings.Cut(p, ",")
			return events.APIGatewayProxyResponse{StatusCode: 200, Headers: map[string]string{"Sec-WebSocket-Protocol": strings.TrimSpace(first)}}, nil
		}
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	case "DISCONNECT":
		var d struct {
			RequestContext struct {
				DisconnectStatusCode int    `json:"disconnectStatusCode"`
				DisconnectReason     string `json:"disconnectReason"`
			} `json:"requestContext"`
		}
		json.Unmarshal(raw, &d)
		fmt.Printf("disconnect %s %d %q\n", rc.ConnectionID, d.RequestContext.DisconnectStatusCode, d.RequestContext.DisconnectReason)
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
	if ev.Body == `{"action":"fail"}` {
		return events.APIGatewayProxyResponse{}, fmt.Errorf("failing on purpose")
	}
	b, _ := json.Marshal(answer{RouteKey: rc.RouteKey, EventType: rc.EventType, ConnectionID: rc.ConnectionID, Body: ev.Body, Stage: rc.Stage, Authorizer: rc.Authorizer})
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: string(b)}, nil
}

func main() { sdk.Start(handle) }
