// Command chat is the function behind the sample WebSocket API mounted at /chat: a chat room for
// every client connected to it.
//
//   - $connect records the member in the stack's key-value store (chat.members.<connection id>)
//     and tells the others that someone joined.
//   - $disconnect deletes the member and tells the others that someone left.
//   - sendmessage ({"action":"sendmessage","data":"hi"}) sends data to every member, the sender
//     included, with one broadcast.
//   - members ({"action":"members"}) answers the sender with its own short id and the members.
//   - $default answers a short help text.
//
// Messages to clients are JSON: {"type":"message","from":"<short id>","data":"…"},
// {"type":"join"|"leave","who":"<short id>","members":N}, {"type":"members","you":…,"members":[…]},
// {"type":"help","data":"…"} and {"type":"error","data":"…"}.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

// memberPrefix starts the key of every member in the stack's key-value store.
const memberPrefix = "chat.members."

// maxData bounds the text of one chat message.
const maxData = 4096

const help = `send {"action":"sendmessage","data":"your text"} to talk to everyone; {"action":"members"} lists who is here`

// notice is every message this function sends to clients.
type notice struct {
	Type string `json:"type"`
	From string `json:"from,omitempty"`
	Who  string `json:"who,omitempty"`
	You  string `json:"you,omitempty"`
	Data string `json:"data,omitempty"`
	// Members is a count in join and leave notices and a list of short ids in a members answer.
	Members any `json:"members,omitempty"`
}

// short is the part of a connection id shown to people: its last six characters (connection ids
// start with the id of their node, which all members on one node share).
func short(id string) string {
	if len(id) <= 6 {
		return id
	}
	return id[len(id)-6:]
}

func handle(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	id := ev.RequestContext.ConnectionID
	switch ev.RequestContext.RouteKey {
	case "$connect":
		value, _ := json.Marshal(map[string]string{"connectedAt": time.Now().UTC().Format(time.RFC3339)})
		if err := sdk.PutKey(ctx, memberPrefix+id, value); err != nil {
			return events.APIGatewayProxyResponse{}, fmt.Errorf("recording member: %w", err)
		}
		members, err := sdk.ListKeys(ctx, memberPrefix)
		if err != nil {
			return events.APIGatewayProxyResponse{}, err
		}
		// The new connection opens only once $connect has answered, so it is left out: it asks for
		// the members itself.
		n, err := broadcast(ctx, without(members, memberPrefix+id), notice{Type: "join", Who: short(id)})
		if err != nil {
			return events.APIGatewayProxyResponse{}, err
		}
		fmt.Printf("%s joined; %d members\n", id, n+1)
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	case "$disconnect":
		if err := sdk.DeleteKey(ctx, memberPrefix+id); err != nil {
			return events.APIGatewayProxyResponse{}, err
		}
		members, err := sdk.ListKeys(ctx, memberPrefix)
		if err != nil {
			return events.APIGatewayProxyResponse{}, err
		}
		n, err := broadcast(ctx, members, notice{Type: "leave", Who: short(id)})
		if err != nil {
			return events.APIGatewayProxyResponse{}, err
		}
		fmt.Printf("%s left; %d members\n", id, n)
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	case "sendmessage":
		var msg struct {
			Data string `json:"data"`
		}
		if err := json.Unmarshal([]byte(ev.Body), &msg); err != nil || strings.TrimSpace(msg.Data) == "" {
			return reply(notice{Type: "error", Data: `want {"action":"sendmessage","data":"some text"}`})
		}
		if len(msg.Data) > maxData {
			return reply(notice{Type: "error", Data: fmt.Sprintf("a message may have at most %d bytes", maxData)})
		}
		members, err := sdk.ListKeys(ctx, memberPrefix)
		if err != nil {
			return events.APIGatewayProxyResponse{}, err
		}
		if _, err := broadcast(ctx, members, notice{Type: "message", From: short(id), Data: msg.Data}); err != nil {
			return events.APIGatewayProxyResponse{}, err
		}
		// The sender is a member: it gets the message with everyone else, so nothing is answered.
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	case "members":
		members, err := sdk.ListKeys(ctx, memberPrefix)
		if err != nil {
			return events.APIGatewayProxyResponse{}, err
		}
		names := make([]string, 0, len(members))
		for _, k := range members {
			names = append(names, short(strings.TrimPrefix(k, memberPrefix)))
		}
		return reply(notice{Type: "members", You: short(id), Members: names})
	}
	return reply(notice{Type: "help", Data: help})
}

// broadcast sends n to the members named by their keys, with the count of members in join and leave
// notices, and forgets the members whose connections are gone (a connection that was open when its
// node stopped never ran $disconnect; the count includes such a member once, until this prunes it).
// It returns how many members were sent n.
func broadcast(ctx context.Context, keys []string, n notice) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, strings.TrimPrefix(k, memberPrefix))
	}
	if n.Type == "join" || n.Type == "leave" {
		n.Members = len(ids)
		if n.Type == "join" {
			n.Members = len(ids) + 1 // and the one who joins
		}
	}
	data, err := json.Marshal(n)
	if err != nil {
		return 0, err
	}
	res, err := sdk.Broadcast(ctx, ids, data)
	if err != nil {
		return 0, fmt.Errorf("broadcast: %w", err)
	}
	for _, gone := range res.Gone {
		if err := sdk.DeleteKey(ctx, memberPrefix+gone); err != nil && !errors.Is(err, sdk.ErrNotFound) {
			return res.Sent, err
		}
	}
	return res.Sent, nil
}

func without(keys []string, key string) []string {
	out := keys[:0:0]
	for _, k := range keys {
		if k != key {
			out = append(out, k)
		}
	}
	return out
}

// reply answers the sender; the routes that reply have routeResponse: true.
func reply(n notice) (events.APIGatewayProxyResponse, error) {
	body, err := json.Marshal(n)
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: string(body)}, nil
}

func main() { sdk.Start(handle) }
