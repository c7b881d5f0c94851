package app

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"gatehouse.dev/gatehouse/internal/bus"
)

// The workers of a node that runs alone (its worker processes, or its inline worker) carry the
// node's id in their heartbeats, as in a cluster: the dispatcher takes a worker with another id for
// one of another node, and gives it up (failing its invocations) after 1 s of silence instead of
// 10 s, which a worker slowed down by a burst of load on its own node should not suffer.
func TestWorkersCarryTheirNodeID(t *testing.T) {
	for _, mode := range []struct {
		name    string
		workers int
	}{{WorkerModeProcess, 2}, {WorkerModeInline, 1}} {
		t.Run(mode.name, func(t *testing.T) {
			n := startNode(t, "testdata/stack.yaml", newDataDir(t), func(o *Options) { o.WorkerMode = mode.name })
			defer n.Stop(context.Background())
			checkWorkersNodeID(t, n, mode.workers)
		})
	}
}

// checkWorkersNodeID waits for heartbeats of want workers, each of which must name n's node.
func checkWorkersNodeID(t *testing.T, n *Node, want int) {
	c, err := bus.Connect(bus.ClientConfig{URL: n.busURL, Credentials: n.busCreds(bus.RoleGateway), Stack: n.stack.Name, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	beats := make(chan bus.Heartbeat, 16)
	sub, err := c.Conn().Subscribe(c.Subjects().WorkerHeartbeat(), func(m *nats.Msg) {
		var hb bus.Heartbeat
		if json.Unmarshal(m.Data, &hb) == nil {
			select {
			case beats <- hb:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if n.nodeID == "" {
		t.Fatal("the node has no id")
	}
	seen := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for len(seen) < want {
		select {
		case hb := <-beats:
			if hb.Node != n.nodeID {
				t.Fatalf("worker %s beats with node %q, want the node's id %q", hb.Worker, hb.Node, n.nodeID)
			}
			seen[hb.Worker] = true
		case <-deadline:
			t.Fatalf("heartbeats of %d workers within 30 s, want %d", len(seen), want)
		}
	}
}
