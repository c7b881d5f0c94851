package apistore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/spec"
)

// v1Key is the one record of schema version 1: every API of the stack, replaced as a whole.
const v1Key = "apis"

// v1Definitions is the record of schema version 1. The types below are its APIs as they were
// stored; they are read only to migrate them.
type v1Definitions struct {
	SchemaVersion int       `json:"schemaVersion"`
	Source        string    `json:"source"`
	UpdatedAt     time.Time `json:"updatedAt"`
	APIs          []v1API   `json:"apis"`
}

type v1API struct {
	ID          string                  `json:"id"`
	Host        string                  `json:"host"`
	Mount       string                  `json:"mount"`
	Stages      []v1Stage               `json:"stages"`
	Routes      []v1Route               `json:"routes"`
	WebSocket   *v1WebSocket            `json:"webSocket"`
	CORS        *v1CORS                 `json:"cors"`
	Authorizers map[string]v1Authorizer `json:"authorizers"`
}

type v1Authorizer struct {
	Type            string   `json:"type"`
	IdentitySources []string `json:"identitySources"`
	Issuer          string   `json:"issuer"`
	Audiences       []string `json:"audiences"`
	JWKSURL         string   `json:"jwksUrl"`
	JWKSFile        string   `json:"jwksFile"`
	Algorithms      []string `json:"algorithms"`
	SkewMs          int64    `json:"skewMs"`
	Function        string   `json:"function"`
	ResultTTLMs     int64    `json:"resultTtlMs"`
	TimeoutMs       int64    `json:"timeoutMs"`
}

type v1WebSocket struct {
	RouteSelectionExpression string `json:"routeSelectionExpression"`
	MaxMessageBytes          int    `json:"maxMessageBytes"`
	IdleTimeoutMs            int64  `json:"idleTimeoutMs"`
	MaxDurationMs            int64  `json:"maxDurationMs"`
	SendQueue                int    `json:"sendQueue"`
}

// v1CORS and v1Throttle were stored with Go's field names.
type v1CORS struct {
	AllowOrigins, AllowMethods, AllowHeaders, ExposeHeaders []string
	MaxAge                                                  int
	AllowCredentials                                        bool
}

type v1Throttle struct {
	Rate  float64
	Burst int
}

type v1Stage struct {
	Name           string                `json:"name"`
	Variables      map[string]string     `json:"variables"`
	Throttle       v1Throttle            `json:"throttle"`
	RouteThrottles map[string]v1Throttle `json:"routeThrottles"`
}

type v1Route struct {
	Key            string `json:"key"`
	Function       string `json:"function"`
	TimeoutMs      int64  `json:"timeoutMs"`
	RouteResponse  bool   `json:"routeResponse"`
	APIKeyRequired bool   `json:"apiKeyRequired"`
	Auth           struct {
		Type       string
		Authorizer string
		Scopes     []string
	} `json:"auth"`
}

func ms(v int64) spec.Duration { return spec.Duration(time.Duration(v) * time.Millisecond) }

// toSpec returns the API a v1 record describes, with what v1 did not store filled as the stack
// file fills it.
func (a v1API) toSpec() spec.API {
	out := spec.API{Name: a.ID, Type: spec.APITypeHTTP, Host: a.Host, Mount: a.Mount, Stages: map[string]spec.Stage{}}
	if out.Mount == "" {
		out.Mount = spec.DefaultMount
	}
	ws := a.WebSocket != nil
	if ws {
		w := a.WebSocket
		out.Type = spec.APITypeWebSocket
		out.RouteSelectionExpression = w.RouteSelectionExpression
		out.WebSocket = &spec.WebSocketLimits{MaxMessageBytes: w.MaxMessageBytes, MaxFrameBytes: min(spec.DefaultMaxFrameBytes, w.MaxMessageBytes),
			IdleTimeout: ms(w.IdleTimeoutMs), MaxConnectionDuration: ms(w.MaxDurationMs), SendQueue: w.SendQueue}
	}
	if c := a.CORS; c != nil {
		out.CORS = &spec.CORS{AllowOrigins: c.AllowOrigins, AllowMethods: c.AllowMethods, AllowHeaders: c.AllowHeaders,
			ExposeHeaders: c.ExposeHeaders, AllowCredentials: c.AllowCredentials}
		if c.MaxAge != -1 {
			out.CORS.MaxAge = &c.MaxAge
		}
	}
	for name, z := range a.Authorizers {
		if out.Authorizers == nil {
			out.Authorizers = map[string]spec.Authorizer{}
		}
		sa := spec.Authorizer{Name: name, Type: z.Type}
		switch z.Type {
		case spec.AuthorizerJWT:
			src := spec.DefaultJWTIdentitySource
			if len(z.IdentitySources) > 0 {
				src = z.IdentitySources[0]
			}
			sa.JWT = &spec.JWTAuthorizer{Issuer: z.Issuer, Audiences: z.Audiences, IdentitySource: src, JWKSURL: z.JWKSURL,
				JWKSFile: z.JWKSFile, Algorithms: z.Algorithms, Skew: ms(z.SkewMs)}
		case spec.AuthorizerFunction:
			sa.Function = &spec.FunctionAuthorizer{Function: z.Function, IdentitySources: z.IdentitySources,
				ResultTTL: ms(z.ResultTTLMs), SimpleResponses: spec.DefaultSimpleResponses, Timeout: ms(z.TimeoutMs)}
		}
		out.Authorizers[name] = sa
	}
	for _, st := range a.Stages {
		s := spec.Stage{Name: st.Name, Variables: st.Variables}
		if s.Variables == nil {
			s.Variables = map[string]string{}
		}
		if st.Throttle != (v1Throttle{}) {
			s.Throttle = &spec.Throttle{Rate: st.Throttle.Rate, Burst: st.Throttle.Burst}
		}
		for k, t := range st.RouteThrottles {
			if s.RouteThrottles == nil {
				s.RouteThrottles = map[string]spec.Throttle{}
			}
			s.RouteThrottles[k] = spec.Throttle{Rate: t.Rate, Burst: t.Burst}
		}
		out.Stages[st.Name] = s
	}
	if len(out.Stages) == 0 {
		out.Stages[spec.DefaultStage] = spec.Stage{Name: spec.DefaultStage, Variables: map[string]string{}}
	}
	for _, r := range a.Routes {
		in := spec.Integration{Type: spec.IntegrationFunction, Target: r.Function, Timeout: ms(r.TimeoutMs)}
		if !ws {
			in.PayloadFormatVersion = spec.PayloadFormat2
		}
		auth := spec.Authorization{Type: r.Auth.Type, Authorizer: r.Auth.Authorizer, Scopes: r.Auth.Scopes}
		if auth.Type == "" {
			auth.Type = spec.AuthNone
		}
		out.Routes = append(out.Routes, spec.Route{Key: r.Key, Integration: in, RouteResponse: r.RouteResponse,
			Authorization: auth, APIKeyRequired: r.APIKeyRequired})
	}
	return out
}

// migrate turns a record of schema version 1 into one record per API and removes it. An API that
// has a record already keeps it. The migrated records name no stack file hash, so the next start
// with a stack file replaces them with the file's definitions.
func (s *Store) migrate(ctx context.Context) error {
	e, err := s.kv.Get(ctx, v1Key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("apistore: reading the definitions of schema version 1: %w", err)
	}
	var d v1Definitions
	if err := json.Unmarshal(e.Value(), &d); err != nil || d.SchemaVersion != 1 {
		return fmt.Errorf("apistore: the record %q is not API definitions of schema version 1 (%v): %w", v1Key, err, ErrUnreadable)
	}
	for _, a := range d.APIs {
		r := Record{Name: a.ID, ManagedBy: ManagedByStackFile, Source: d.Source, UpdatedAt: d.UpdatedAt, API: a.toSpec()}
		if _, err := s.Put(ctx, r, 0); err != nil && !errors.Is(err, ErrConflict) {
			return err
		}
	}
	if err := s.kv.Purge(ctx, v1Key, jetstream.LastRevision(e.Revision())); err != nil && !isWrongSequence(err) {
		return fmt.Errorf("apistore: removing the definitions of schema version 1: %w", err)
	}
	return nil
}
