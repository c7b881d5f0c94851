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
	"gatehouse.dev/gatehouse/internal/jwtauth"
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
	// CORS is stored as the gateway's settings, which are plain data.
	CORS        *gateway.CORS               `json:"cors,omitempty"`
	Authorizers map[string]authorizerRecord `json:"authorizers,omitempty"`
}

// authorizerRecord holds an authorizer's settings.
type authorizerRecord struct {
	Type            string   `json:"type"`
	IdentitySources []string `json:"identitySources,omitempty"`
	// JWT authorizers.
	Issuer     string   `json:"issuer,omitempty"`
	Audiences  []string `json:"audiences,omitempty"`
	JWKSURL    string   `json:"jwksUrl,omitempty"`
	JWKSFile   string   `json:"jwksFile,omitempty"`
	Algorithms []string `json:"algorithms,omitempty"`
	SkewMs     int64    `json:"skewMs,omitempty"`
	// Function authorizers.
	Function    string `json:"function,omitempty"`
	ResultTTLMs int64  `json:"resultTtlMs,omitempty"`
	TimeoutMs   int64  `json:"timeoutMs,omitempty"`
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
	Name           string                              `json:"name"`
	Variables      map[string]string                   `json:"variables,omitempty"`
	Throttle       gateway.ThrottleSettings            `json:"throttle"`
	RouteThrottles map[string]gateway.ThrottleSettings `json:"routeThrottles,omitempty"`
}

type routeRecord struct {
	Key      string `json:"key"`
	Function string `json:"function"`
	// TimeoutMs is the integration timeout in milliseconds.
	TimeoutMs      int64             `json:"timeoutMs"`
	RouteResponse  bool              `json:"routeResponse,omitempty"`
	Auth           gateway.RouteAuth `json:"auth"`
	APIKeyRequired bool              `json:"apiKeyRequired,omitempty"`
}

func encodeAPIs(apis []gateway.API) (json.RawMessage, error) {
	recs := make([]apiRecord, 0, len(apis))
	for _, a := range apis {
		r := apiRecord{ID: a.ID, Host: a.Host, Mount: a.Mount, Stages: []stageRecord{}, Routes: []routeRecord{}}
		if w := a.WebSocket; w != nil {
			r.WebSocket = &webSocketRecord{RouteSelectionExpression: w.RouteSelectionExpression, MaxMessageBytes: w.MaxMessageBytes,
				IdleTimeoutMs: w.IdleTimeout.Milliseconds(), MaxDurationMs: w.MaxDuration.Milliseconds(), SendQueue: w.SendQueue}
		}
		r.CORS = a.CORS
		for name, z := range a.Authorizers {
			if r.Authorizers == nil {
				r.Authorizers = map[string]authorizerRecord{}
			}
			ar := authorizerRecord{Type: z.Type, IdentitySources: z.IdentitySources, Function: z.Function,
				ResultTTLMs: z.ResultTTL.Milliseconds(), TimeoutMs: z.Timeout.Milliseconds()}
			if j := z.JWT; j != nil {
				ar.Issuer, ar.Audiences, ar.JWKSURL, ar.JWKSFile, ar.Algorithms, ar.SkewMs = j.Issuer, j.Audiences, j.JWKSURL, j.JWKSFile, j.Algorithms, j.Skew.Milliseconds()
			}
			r.Authorizers[name] = ar
		}
		for _, st := range a.Stages {
			r.Stages = append(r.Stages, stageRecord{Name: st.Name, Variables: st.Variables, Throttle: st.Throttle, RouteThrottles: st.RouteThrottles})
		}
		for _, rt := range a.Routes {
			r.Routes = append(r.Routes, routeRecord{Key: rt.Key, Function: rt.Function, TimeoutMs: rt.Timeout.Milliseconds(), RouteResponse: rt.RouteResponse,
				Auth: rt.Auth, APIKeyRequired: rt.APIKeyRequired})
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
		a.CORS = r.CORS
		for name, ar := range r.Authorizers {
			if a.Authorizers == nil {
				a.Authorizers = map[string]gateway.Authorizer{}
			}
			z := gateway.Authorizer{Type: ar.Type, IdentitySources: ar.IdentitySources, Function: ar.Function,
				ResultTTL: time.Duration(ar.ResultTTLMs) * time.Millisecond, Timeout: time.Duration(ar.TimeoutMs) * time.Millisecond}
			if ar.Type == gateway.AuthJWT {
				z.JWT = &jwtauth.Config{Issuer: ar.Issuer, Audiences: ar.Audiences, JWKSURL: ar.JWKSURL, JWKSFile: ar.JWKSFile,
					Algorithms: ar.Algorithms, Skew: time.Duration(ar.SkewMs) * time.Millisecond}
			}
			a.Authorizers[name] = z
		}
		for _, st := range r.Stages {
			a.Stages = append(a.Stages, gateway.Stage{Name: st.Name, Variables: st.Variables, Throttle: st.Throttle, RouteThrottles: st.RouteThrottles})
		}
		for _, rt := range r.Routes {
			a.Routes = append(a.Routes, gateway.Route{Key: rt.Key, Function: rt.Function, Timeout: time.Duration(rt.TimeoutMs) * time.Millisecond,
				RouteResponse: rt.RouteResponse, Auth: rt.Auth, APIKeyRequired: rt.APIKeyRequired})
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
