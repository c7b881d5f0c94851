package app

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"time"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/gateway"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/spec"
	runtimeprocess "gatehouse.dev/gatehouse/runtimes/process"
)

// activateTimeout bounds how long a deploy waits for the workers to load a new version.
const activateTimeout = 2 * time.Minute

// checkBundle compiles an uploaded bundle's module as the workers will, before anything is stored: a
// module that is not valid WebAssembly, imports what Gatehouse does not provide, or exports neither
// ABI is refused, and one that passes is in the compilation cache when workers load it.
func (n *Node) checkBundle(ctx context.Context, b *functions.Bundle) error {
	if spec.IsProcessRuntime(b.Manifest.Runtime) {
		// A package is run, not compiled: what it needs is its interpreter on this node.
		_, err := runtimeprocess.FindInterpreter(ctx, b.Manifest.Runtime, exec.LookPath)
		return err
	}
	_, err := checkModule(ctx, filepath.Join(n.dataDir, "compile"), b)
	return err
}

// activate waits until this node's gateway routes by a registry view that has version v, which
// happens once every ready worker has loaded it: a deploy is answered when the version serves warm.
func (n *Node) activate(ctx context.Context, v functions.VersionRecord) error {
	return n.applied(ctx, func(s *functions.Snapshot) bool {
		got, ok := s.Version(v.Function, v.Version)
		return ok && got.FunctionID == v.FunctionID
	})
}

// applied waits until the gateway routes by a registry view that satisfies done, so that a change
// made through the admin API serves on the next request, warm.
func (n *Node) applied(ctx context.Context, done func(*functions.Snapshot) bool) error {
	ctx, cancel := context.WithTimeout(ctx, activateTimeout)
	defer cancel()
	if _, err := n.served.WaitFor(ctx, done); err != nil {
		_, ready, _ := n.workerState()
		return fmt.Errorf("waiting for the %d ready workers to load the change: %w", ready, err)
	}
	return nil
}

// invoke runs a function version directly, as the admin API's invoke does: resolved like a route's
// target, through the dispatcher, bounded by the version's timeout.
func (n *Node) invoke(ctx context.Context, function, qualifier string, payload []byte) ([]byte, int, error) {
	return n.invokeAs(ctx, function, qualifier, payload, gateway.NewRequestID())
}

// invokeAs is invoke with the request id the invocation's log records carry.
func (n *Node) invokeAs(ctx context.Context, function, qualifier string, payload []byte, requestID string) ([]byte, int, error) {
	t, err := n.served.Snapshot().Target(function, qualifier, rand.Float64())
	if err != nil {
		return nil, 0, err
	}
	// A little longer than the function's own limit, so that its timeout is reported as such.
	deadline := time.Now().Add(t.Timeout + overrunGrace + time.Second)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	out, err := n.dispatcher.Invoke(ctx, bus.Invocation{
		Function: function, FunctionID: t.FunctionID, Version: t.Version, Timeout: t.Timeout, MaxConcurrency: t.MaxConcurrency,
		RequestID: requestID, Deadline: deadline, Payload: payload,
	})
	return out, t.Version, err
}
