package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/gateway"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/async"
	"gatehouse.dev/gatehouse/internal/spec"
)

// openAsync opens the stack's queue of asynchronous invocations and runs it on this node: every node
// that dispatches runs the same durable consumers, so events spread over the nodes.
func (n *Node) openAsync(ctx context.Context, stack *spec.Stack) error {
	js, err := n.jetStream()
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	cfg := async.Config{
		JS: js, Stack: stack.Name, Invoke: n.invokeAs, Settings: n.asyncSettings,
		FunctionARN:  func(fn string) string { return spec.FunctionARN(stack.IAM.Region, stack.IAM.AccountID, fn) },
		NewRequestID: gateway.NewRequestID, Concurrency: n.opts.AsyncConcurrency, AckWait: n.opts.AsyncAckWait,
		Region: stack.IAM.Region, AccountID: stack.IAM.AccountID,
		Logger: n.log.With("component", "async"),
	}
	// A node that starts or rejoins while the cluster's streams elect their leaders opens again
	// what timed out (opening is idempotent).
	var q *async.Queue
	err = retryTransient(ctx, func() (err error) {
		q, err = async.Open(ctx, cfg)
		return err
	})
	if err != nil {
		return fmt.Errorf("opening the asynchronous invocation queue: %w", err)
	}
	n.async = q
	if err := n.metrics.Register(q.Collector()); err != nil {
		return fmt.Errorf("asynchronous invocation metrics: %w", err)
	}
	n.serve(func() error { q.Run(n.backgroundCtx); return nil }, "asynchronous invocations")
	// Nodes that start together set the same schedules and sources while the cluster's streams
	// elect their leaders; setting them is idempotent, so what timed out is set again.
	return retryTransient(ctx, func() error { return n.setSchedules(ctx, stack) })
}

// setSchedules makes the stack's schedules and event sources those of the stack file's functions.
func (n *Node) setSchedules(ctx context.Context, stack *spec.Stack) error {
	if n.async == nil {
		return nil
	}
	var all []async.ScheduleOf
	for _, name := range slices.Sorted(maps.Keys(stack.Functions)) {
		for _, s := range stack.Functions[name].Schedules {
			all = append(all, async.ScheduleOf{Function: name, Schedule: s})
		}
	}
	if err := n.async.SetSchedules(ctx, all); err != nil {
		return fmt.Errorf("setting the stack's schedules: %w", err)
	}
	var sources []async.SourceOf
	for _, name := range slices.Sorted(maps.Keys(stack.Functions)) {
		for _, e := range stack.Functions[name].Events {
			sources = append(sources, async.SourceOf{Function: name, EventSource: e})
		}
	}
	if err := n.async.SetSources(ctx, sources); err != nil {
		return fmt.Errorf("setting the stack's event sources: %w", err)
	}
	return nil
}

// publish stores a message on a subject of the stack's event bus, for the admin API.
func (n *Node) publish(ctx context.Context, subject string, data []byte) (uint64, error) {
	if n.async == nil {
		return 0, errors.New("the event bus is not available on this node")
	}
	return n.async.Publish(ctx, subject, data, "")
}

// asyncSettings are the async settings of the version function and qualifier resolve to now.
func (n *Node) asyncSettings(function, qualifier string) (spec.AsyncSettings, error) {
	snap := n.served.Snapshot()
	t, err := snap.Target(function, qualifier, 0)
	if err != nil {
		return spec.AsyncSettings{}, err
	}
	v, ok := snap.Version(function, t.Version)
	if !ok {
		return spec.AsyncSettings{}, fmt.Errorf("functions: %s version %d: %w", function, t.Version, functions.ErrNotFound)
	}
	if v.Manifest.Async == nil {
		return spec.DefaultAsyncSettings(), nil
	}
	return *v.Manifest.Async, nil
}

// enqueueNew is enqueue under a new request id, which it returns: the admin API's.
func (n *Node) enqueueNew(ctx context.Context, function, qualifier string, payload []byte) (string, error) {
	id := gateway.NewRequestID()
	return id, n.enqueue(ctx, function, qualifier, payload, id)
}

// queues returns the asynchronous invocation queues, for the admin API.
func (n *Node) queues(ctx context.Context) ([]adminapi.QueueStats, error) {
	if n.async == nil {
		return nil, errors.New("asynchronous invocations are not available on this node")
	}
	stats, err := n.async.Stats(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]adminapi.QueueStats, len(stats))
	for i, s := range stats {
		out[i] = adminapi.QueueStats(s)
	}
	return out, nil
}

// schedules lists the stack's stored schedules, for the admin API.
func (n *Node) schedules(ctx context.Context) ([]adminapi.Schedule, error) {
	if n.async == nil {
		return nil, errors.New("schedules are not available on this node")
	}
	list, err := n.async.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]adminapi.Schedule, len(list))
	for i, s := range list {
		out[i] = adminapi.Schedule(s)
	}
	return out, nil
}

// redrive queues a function's dead letters again, for the admin API.
func (n *Node) redrive(ctx context.Context, function string) (int, error) {
	if n.async == nil {
		return 0, errors.New("asynchronous invocations are not available on this node")
	}
	return n.async.Redrive(ctx, function)
}

// enqueue queues an asynchronous invocation of function, once it resolves.
func (n *Node) enqueue(ctx context.Context, function, qualifier string, payload []byte, requestID string) error {
	if n.async == nil {
		return errors.New("asynchronous invocations are not available on this node")
	}
	if _, err := n.served.Snapshot().Target(function, qualifier, 0); err != nil {
		return err
	}
	return n.async.Enqueue(ctx, async.Event{Function: function, Qualifier: qualifier, RequestID: requestID, Payload: payload})
}
