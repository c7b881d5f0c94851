package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"gatehouse.dev/gatehouse/internal/bus"
)

// recorded returns the ended spans by name (the last of each name).
func recorded(rec *tracetest.SpanRecorder) map[string]sdktrace.ReadOnlySpan {
	out := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		out[s.Name()] = s
	}
	return out
}

// parentOf is the parent span id a traceparent names (its third field).
func parentOf(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 {
		return ""
	}
	return parts[2]
}

func TestTracingSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
	inv := newWSInvoker()
	inv.setScript(func(_ context.Context, in bus.Invocation) ([]byte, error) {
		if in.Function == "auth" {
			return []byte(`{"isAuthorized":true}`), nil
		}
		return []byte(`{"statusCode":200}`), nil
	})
	web := API{ID: "web", Routes: []Route{{Key: "GET /hi", Function: "hi", Auth: RouteAuth{Type: AuthFunction, Authorizer: "gate"}}},
		Authorizers: map[string]Authorizer{"gate": {Type: AuthFunction, Function: "auth", IdentitySources: []string{"$request.header.x-token"}, Timeout: time.Second}}}
	ws := wsTestAPI(WebSocketSettings{}, Route{Key: "$connect"}, Route{Key: "$disconnect"}, Route{Key: "$default"})
	ws.Host = "ws.example"
	ts := startServer(t, Config{APIs: []API{web, ws}, NodeID: "node0001", Connections: &fakeConnections{}, Tracer: tracer}, inv)

	// An HTTP request continues its caller's trace; the function is called with the integration's.
	const trace, caller = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	if r := ts.get(t, "/hi", "traceparent", "00-"+trace+"-"+caller+"-01", "x-token", "t"); r.status != 200 {
		t.Fatalf("GET /hi: %s", r)
	}
	spans := recorded(rec)
	req, authz, integ := spans["GET /hi"], spans["authorizer gate"], spans["integration hi"]
	if req == nil || authz == nil || integ == nil {
		t.Fatalf("spans %v: want the request's, the authorizer's and the integration's", spans)
	}
	if req.SpanContext().TraceID().String() != trace || req.Parent().SpanID().String() != caller {
		t.Errorf("request span: trace %s, parent %s; want %s and the caller's %s", req.SpanContext().TraceID(), req.Parent().SpanID(), trace, caller)
	}
	for name, s := range map[string]sdktrace.ReadOnlySpan{"authorizer": authz, "integration": integ} {
		if s.Parent().SpanID() != req.SpanContext().SpanID() {
			t.Errorf("%s span's parent %s, want the request's %s", name, s.Parent().SpanID(), req.SpanContext().SpanID())
		}
	}
	hi := inv.of("hi")
	if len(hi) != 1 || parentOf(hi[0].TraceParent) != integ.SpanContext().SpanID().String() {
		t.Errorf("the function's traceparent %q, want the integration span %s as its parent", hi[0].TraceParent, integ.SpanContext().SpanID())
	}

	// Each WebSocket event is a trace of its own, and its function gets it.
	header := map[string][]string{"Host": {"ws.example"}}
	c, _, err := dial(t, ts, nil, "", header)
	if err != nil {
		t.Fatal(err)
	}
	waitInvocation(t, inv, "connect")
	if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	msg, _ := waitInvocation(t, inv, "default")
	deadline := time.Now().Add(5 * time.Second)
	for recorded(rec)["websocket $default"] == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	spans = recorded(rec)
	connect, message := spans["websocket $connect"], spans["websocket $default"]
	if connect == nil || message == nil {
		t.Fatalf("spans %v: want one per WebSocket event", spans)
	}
	if connect.SpanContext().TraceID() == message.SpanContext().TraceID() || message.Parent().IsValid() {
		t.Errorf("WebSocket events share trace %s, or have a parent: want a trace each", connect.SpanContext().TraceID())
	}
	if parentOf(msg.TraceParent) != message.SpanContext().SpanID().String() {
		t.Errorf("the message's traceparent %q, want its span %s", msg.TraceParent, message.SpanContext().SpanID())
	}
}
