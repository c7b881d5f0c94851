package app

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/gateway"
	"gatehouse.dev/gatehouse/internal/apistore"
)

// apiRecord is how an API is stored in the stack's API definitions (internal/apistore), which every
// gateway of the stack serves.
type apiRecord struct {
	ID        string           `json:"id"`
	Host      string           `json:"host,omitempty"`
	Mount     string           `json:"mount,omitempty"`
	Stages    []stageRecord    `json:"stages"`
	Routes    []routeRecord    `json:"routes"`
	WebSocket *webSocketRecord `json:"webSocket,omitempty"`
}

// webSocketRecord holds a WebSocket API's settings.
type webSocketRecord struct {
	RouteSelectionExpression string `json:"routeSelectionExpression"`
	MaxMessageBytes          int    `json:"maxMessageBytes"`
	IdleTimeoutMs            int64  `json:"idleTimeoutMs"`
	MaxDurationMs            int64  `json:"maxDurationMs"`
	SendQueue                int    `json:"sendQueue"`
}

type stageRecord struct {
	Name      string            `json:"name"`
	Variables map[string]string `json:"variables,omitempty"`
}

type routeRecord struct {
	Key      string `json:"key"`
	Function string `json:"function"`
	// TimeoutMs is the integration timeout in milliseconds.
	TimeoutMs     int64 `json:"timeoutMs"`
	RouteResponse bool  `json:"routeResponse,omitempty"`
}

func encodeAPIs(apis []gateway.API) (json.RawMessage, error) {
	recs := make([]apiRecord, 0, len(apis))
	for _, a := range apis {
		r := apiRecord{ID: a.ID, Host: a.Host, Mount: a.Mount, Stages: []stageRecord{}, Routes: []routeRecord{}}
		if w := a.WebSocket; w != nil {
			r.WebSocket = &webSocketRecord{RouteSelectionExpression: w.RouteSelectionExpression, MaxMessageBytes: w.MaxMessageBytes,
				IdleTimeoutMs: w.IdleTimeout.Milliseconds(), MaxDurationMs: w.MaxDuration.Milliseconds(), SendQueue: w.SendQueue}
		}
		for _, st := range a.Stages {
			r.Stages = append(r.Stages, stageRecord{Name: st.Name, Variables: st.Variables})
		}
		for _, rt := range a.Routes {
			r.Routes = append(r.Routes, routeRecord{Key: rt.Key, Function: rt.Function, TimeoutMs: rt.Timeout.Milliseconds(), RouteResponse: rt.RouteResponse})
		}
		recs = append(recs, r)
	}
	return json.Marshal(recs)
}

func decodeAPIs(b json.RawMessage) ([]gateway.API, error) {
	var recs []apiRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, err
	}
	apis := make([]gateway.API, 0, len(recs))
	for _, r := range recs {
		a := gateway.API{ID: r.ID, Host: r.Host, Mount: r.Mount}
		if w := r.WebSocket; w != nil {
			a.WebSocket = &gateway.WebSocketSettings{RouteSelectionExpression: w.RouteSelectionExpression, MaxMessageBytes: w.MaxMessageBytes,
				IdleTimeout: time.Duration(w.IdleTimeoutMs) * time.Millisecond, MaxDuration: time.Duration(w.MaxDurationMs) * time.Millisecond, SendQueue: w.SendQueue}
		}
		for _, st := range r.Stages {
			a.Stages = append(a.Stages, gateway.Stage{Name: st.Name, Variables: st.Variables})
		}
		for _, rt := range r.Routes {
			a.Routes = append(a.Routes, gateway.Route{Key: rt.Key, Function: rt.Function, Timeout: time.Duration(rt.TimeoutMs) * time.Millisecond, RouteResponse: rt.RouteResponse})
		}
		apis = append(apis, a)
	}
	return apis, nil
}

// publishAPIs stores the stack file's API definitions (unless they are stored already) and returns
// the definitions the gateway is to serve: the stored ones.
func (n *Node) publishAPIs(ctx context.Context) ([]gateway.API, uint64, error) {
	js, err := jetstream.New(n.control.Conn())
	if err != nil {
		return nil, 0, fmt.Errorf("bus: %w", err)
	}
	if n.apiStore, err = apistore.Open(ctx, js, n.stack.Name); err != nil {
		return nil, 0, err
	}
	doc, err := encodeAPIs(gatewayAPIs(n.stack))
	if err != nil {
		return nil, 0, err
	}
	rev, _, err := n.apiStore.Put(ctx, filepath.Base(n.stack.File), doc, time.Now())
	if err != nil {
		return nil, 0, err
	}
	d, err := n.apiStore.Get(ctx)
	if err != nil {
		return nil, 0, err
	}
	apis, err := decodeAPIs(d.APIs)
	if err != nil {
		return nil, 0, fmt.Errorf("API definitions revision %d: %w", d.Revision, err)
	}
	return apis, rev, nil
}

// followAPIs swaps the gateway's routes whenever the stack's API definitions change (another node
// started with a changed stack file), until ctx is done.
func (n *Node) followAPIs(ctx context.Context, served uint64) {
	err := n.apiStore.Watch(ctx, func(d apistore.Definitions) {
		if d.Revision <= served {
			return
		}
		apis, err := decodeAPIs(d.APIs)
		if err == nil {
			err = n.gw.SetAPIs(apis)
		}
		if err != nil {
			n.log.Error("API definitions not applied", "revision", d.Revision, "source", d.Source, "err", err)
			return
		}
		served = d.Revision
		n.log.Info("API definitions applied", "revision", d.Revision, "source", d.Source, "apis", len(apis))
	}, func(err error) { n.log.Error("API definitions not readable", "err", err) })
	if err != nil {
		n.log.Error("following API definitions stopped", "err", err)
	}
}
