// Command hostcalls is a test function: its event names one host call and its arguments, and it
// answers with what the call returned, so tests can drive every host call from outside.
package main

import (
	"context"
	"errors"
	"time"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

type request struct {
	Op     string   `json:"op"`
	ID     string   `json:"id"`
	IDs    []string `json:"ids"`
	Key    string   `json:"key"`
	Data   string   `json:"data"`
	TTLms  int      `json:"ttlMs"`
	Prefix string   `json:"prefix"`
}

type answer struct {
	Error      string               `json:"error,omitempty"`
	Value      string               `json:"value,omitempty"`
	Keys       []string             `json:"keys,omitempty"`
	Broadcast  *sdk.BroadcastResult `json:"broadcast,omitempty"`
	Connection *sdk.Connection      `json:"connection,omitempty"`
}

func errName(err error) string {
	for _, e := range []error{sdk.ErrGone, sdk.ErrNotFound, sdk.ErrTooLarge, sdk.ErrLimitExceeded, sdk.ErrInvalid, sdk.ErrExists, sdk.ErrUnavailable} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return err.Error()
}

func handle(ctx context.Context, r request) (answer, error) {
	var a answer
	var err error
	switch r.Op {
	case "post":
		err = sdk.PostToConnection(ctx, r.ID, []byte(r.Data))
	case "get":
		var c sdk.Connection
		if c, err = sdk.GetConnection(ctx, r.ID); err == nil {
			a.Connection = &c
		}
	case "delete":
		err = sdk.DeleteConnection(ctx, r.ID)
	case "broadcast":
		var b sdk.BroadcastResult
		if b, err = sdk.Broadcast(ctx, r.IDs, []byte(r.Data)); err == nil {
			a.Broadcast = &b
		}
	case "kvget":
		var v []byte
		v, err = sdk.GetKey(ctx, r.Key)
		a.Value = string(v)
	case "kvput":
		err = sdk.PutKey(ctx, r.Key, []byte(r.Data))
	case "kvcreate":
		err = sdk.CreateKey(ctx, r.Key, []byte(r.Data), time.Duration(r.TTLms)*time.Millisecond)
	case "kvdelete":
		err = sdk.DeleteKey(ctx, r.Key)
	case "kvlist":
		a.Keys, err = sdk.ListKeys(ctx, r.Prefix)
	}
	if err != nil {
		a.Error = errName(err)
	}
	return a, nil
}

func main() { sdk.Start(handle) }
