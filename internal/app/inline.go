package app

import (
	"context"
	"time"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/spec"
)

// Worker modes (--worker-mode).
const (
	// WorkerModeProcess runs guests in worker processes that `up` supervises: the default.
	WorkerModeProcess = "process"
	// WorkerModeInline runs guests in one worker inside `up`'s own process, connected to the bus
	// in-process, to which the gateway hands its invocations by a function call (bus.Local). A
	// request then crosses no process boundary and not the NATS server: less CPU and latency.
	// Guests are bounded there as in a worker process (safepoints stop them at their deadline,
	// memory limits and the worker budget hold, a trap discards only its instance), but a worker
	// stalled where no safepoint reaches cannot be killed and replaced, and there is no standby.
	WorkerModeInline = "inline"
)

// startInlineWorker runs the node's inline worker until ctx ends, starting it again (after a
// pause growing to 5 s) should it stop on an error.
func (n *Node) startInlineWorker(ctx context.Context, stack *spec.Stack, dataDir string, creds bus.Credentials) {
	opts := workerOptions{
		id: "w1" + n.workerSuffix(), stack: stack.Name, dataDir: dataDir, memoryMB: n.opts.WorkerMemoryMB,
		quarantineFor: n.opts.QuarantineFor, outboundCAFile: n.opts.OutboundCAFile,
		gateway: n.GatewayAddr(), region: stack.IAM.Region, accountID: stack.IAM.AccountID,
		traceEndpoint: n.opts.TraceEndpoint, traceRatio: n.opts.TraceRatio,
		outboundMaxResponseMB: n.opts.OutboundMaxResponseMB, inline: true,
		// Always, as for worker processes (see the supervisor's arguments): without it the
		// dispatcher takes this worker for another node's and gives it up after 1 s of silence.
		node: n.nodeID,
	}
	log := n.log.With("worker", opts.id)
	n.inlineWG.Add(1)
	go func() {
		defer n.inlineWG.Done()
		backoff := 100 * time.Millisecond
		for ctx.Err() == nil {
			client, err := bus.Connect(bus.ClientConfig{
				URL: n.busURL, Credentials: creds, Stack: stack.Name, Node: opts.node,
				Name: "worker-" + opts.id, InboxPrefix: bus.WorkerInboxPrefix, InProcess: n.srv, Local: n.local,
			})
			if err == nil {
				err = serveWorker(ctx, client, opts, log)
				client.Close()
			}
			if ctx.Err() != nil {
				return
			}
			log.Warn("inline worker stopped; starting it again", "err", err, "after", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}()
}
