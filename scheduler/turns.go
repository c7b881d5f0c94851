package scheduler

import (
	"context"
	"time"

	"gatehouse.dev/gatehouse/runtimes"
)

// turnYieldingHost gives up the invocation's turn to run guest code while a host call waits (on the
// bus, the key-value store), and takes a turn again before the guest goes on.
type turnYieldingHost struct {
	runtimes.Host
	turns chan struct{}
}

// during runs a host call without a turn.
func during[T any](t turnYieldingHost, call func() (T, error)) (T, error) {
	<-t.turns
	defer func() { t.turns <- struct{}{} }()
	return call()
}

func (t turnYieldingHost) PostToConnection(ctx context.Context, id string, data []byte) error {
	_, err := during(t, func() (struct{}, error) { return struct{}{}, t.Host.PostToConnection(ctx, id, data) })
	return err
}

func (t turnYieldingHost) GetConnection(ctx context.Context, id string) ([]byte, error) {
	return during(t, func() ([]byte, error) { return t.Host.GetConnection(ctx, id) })
}

func (t turnYieldingHost) DeleteConnection(ctx context.Context, id string) error {
	_, err := during(t, func() (struct{}, error) { return struct{}{}, t.Host.DeleteConnection(ctx, id) })
	return err
}

func (t turnYieldingHost) Broadcast(ctx context.Context, ids []string, data []byte) ([]string, error) {
	return during(t, func() ([]string, error) { return t.Host.Broadcast(ctx, ids, data) })
}

func (t turnYieldingHost) KVGet(ctx context.Context, key string) ([]byte, error) {
	return during(t, func() ([]byte, error) { return t.Host.KVGet(ctx, key) })
}

func (t turnYieldingHost) KVPut(ctx context.Context, key string, value []byte) error {
	_, err := during(t, func() (struct{}, error) { return struct{}{}, t.Host.KVPut(ctx, key, value) })
	return err
}

func (t turnYieldingHost) KVCreate(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := during(t, func() (struct{}, error) { return struct{}{}, t.Host.KVCreate(ctx, key, value, ttl) })
	return err
}

func (t turnYieldingHost) KVDelete(ctx context.Context, key string) error {
	_, err := during(t, func() (struct{}, error) { return struct{}{}, t.Host.KVDelete(ctx, key) })
	return err
}

func (t turnYieldingHost) KVList(ctx context.Context, prefix string) ([]string, error) {
	return during(t, func() ([]string, error) { return t.Host.KVList(ctx, prefix) })
}
