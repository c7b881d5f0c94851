package app

import (
	"context"
	"encoding/json"
	"testing"

	"gatehouse.dev/gatehouse/loadtest"
)

// TestLoadtestWS runs `gatehouse loadtest ws` against the WebSocket API of a running node: 20
// connections, messages to the echo route for a second, then fan-out through @connections to every
// connection, whose ids the echo route's answers carry.
func TestLoadtestWS(t *testing.T) {
	n := startNode(t, "testdata/ws-stack.yaml", newDataDir(t))
	t.Cleanup(func() { n.Stop(context.Background()) })

	var stdout, stderr syncBuffer
	code := Main([]string{"loadtest", "ws", "ws://" + n.GatewayAddr() + "/chat",
		"--connections", "20", "--duration", "1s", "--message-rate", "50", "--json",
		"--post-fanout", "--fanout-rounds", "2", "--id-message", `{"action":"echo"}`,
		"--access-key", wsKeyID, "--secret-key", wsKeySecret,
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	var sum loadtest.WSSummary
	if err := json.Unmarshal([]byte(stdout.String()), &sum); err != nil {
		t.Fatalf("output %s: %v", stdout.String(), err)
	}
	if sum.Connected != 20 || sum.Errors != 0 {
		t.Fatalf("connected %d, errors %v; want 20 and none\n%s", sum.Connected, sum.ErrorKinds, stdout.String())
	}
	if sum.Sent == 0 || sum.Received != sum.Sent || sum.Lost != 0 {
		t.Errorf("sent %d, received %d, lost %d; want every message echoed", sum.Sent, sum.Received, sum.Lost)
	}
	if sum.IDs != 20 || sum.FanoutPosts["200"] != 40 || sum.FanoutDelivered != 40 {
		t.Errorf("ids %d, posts %v, delivered %d; want 20 ids and 40 posts delivered", sum.IDs, sum.FanoutPosts, sum.FanoutDelivered)
	}
	if sum.ClosedCleanly != 20 {
		t.Errorf("%d connections closed cleanly, want 20", sum.ClosedCleanly)
	}
	// Every connection ran $disconnect after its close frame (1000).
	waitCount(t, n, 0)
}
