package app

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// receivedSpan is a span an OTLP receiver got.
type receivedSpan struct {
	service, name             string
	traceID, spanID, parentID string
}

// otlpReceiver is an in-process OTLP/HTTP collector: it keeps the spans posted to /v1/traces.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []receivedSpan
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		data, _ := io.ReadAll(body)
		var export collector.ExportTraceServiceRequest
		if req.URL.Path != "/v1/traces" || proto.Unmarshal(data, &export) != nil {
			http.Error(w, "want an OTLP export on /v1/traces", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range export.ResourceSpans {
			service := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					service = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					r.spans = append(r.spans, receivedSpan{service: service, name: s.Name, traceID: hex.EncodeToString(s.TraceId),
						spanID: hex.EncodeToString(s.SpanId), parentID: hex.EncodeToString(s.ParentSpanId)})
				}
			}
		}
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collector.ExportTraceServiceResponse{})
		w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

// find returns the span of trace named name (by prefix), if it came.
func (r *otlpReceiver) find(trace, name string) (receivedSpan, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.spans {
		if s.traceID == trace && strings.HasPrefix(s.name, name) {
			return s, true
		}
	}
	return receivedSpan{}, false
}

// TestTracing sends a request with a traceparent to a node that exports spans to an in-process OTLP
// receiver, and checks the tree: the gateway's request span continues the caller's, the integration
// is its child, and the worker's invocation (another process) is the integration's, with the wait
// for an instance and the cold start under it; the function sees the trace in _X_AMZN_TRACE_ID.
func TestTracing(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found on PATH: the stack has a Python function (.ci/run installs it)")
	}
	needSandbox(t)
	recv := newOTLPReceiver(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"fn/app.py": "import os\n\ndef handler(event, context):\n    print('traced')\n    return {'statusCode': 200, 'body': os.environ.get('_X_AMZN_TRACE_ID', '')}\n",
		"gatehouse.yaml": "version: 1\nname: traced\nfunctions:\n  fn: {source: ./fn, runtime: python3.11, handler: app.handler}\n" +
			"apis:\n  web:\n    type: http\n    routes:\n      GET /traced: {function: fn}\n",
	})
	n := startNode(t, filepath.Join(dir, "gatehouse.yaml"), newDataDir(t), func(o *Options) { o.TraceEndpoint, o.TraceRatio = recv.URL, 1 })

	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req := newRequest(t, "GET", "http://"+n.GatewayAddr()+"/traced", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	r := do(t, req)
	if r.status != 200 || !strings.HasPrefix(string(r.body), "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=") || !strings.HasSuffix(string(r.body), ";Sampled=1") {
		t.Fatalf("GET /traced: %d %q, want the trace in _X_AMZN_TRACE_ID", r.status, r.body)
	}

	var gw, integration, invoke, wait, cold receivedSpan
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ok [5]bool
		gw, ok[0] = recv.find(traceID, "GET /traced")
		integration, ok[1] = recv.find(traceID, "integration fn")
		invoke, ok[2] = recv.find(traceID, "invoke fn")
		wait, ok[3] = recv.find(traceID, "wait for an instance")
		cold, ok[4] = recv.find(traceID, "cold start")
		if ok == [5]bool{true, true, true, true, true} {
			break
		}
		if time.Now().After(deadline) {
			recv.mu.Lock()
			t.Fatalf("spans of trace %s: found %v of gateway, integration, invoke, wait, cold start; all spans: %+v", traceID, ok, recv.spans)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range []struct {
		what       string
		span       receivedSpan
		parent     string
		parentName string
		service    string
	}{
		{"the gateway's request", gw, callerSpan, "the caller's", "gatehouse"},
		{"the integration", integration, gw.spanID, "the request's", "gatehouse"},
		{"the invocation", invoke, integration.spanID, "the integration's", "gatehouse-worker"},
		{"the wait for an instance", wait, invoke.spanID, "the invocation's", "gatehouse-worker"},
		{"the cold start", cold, invoke.spanID, "the invocation's", "gatehouse-worker"},
	} {
		if c.span.parentID != c.parent || c.span.service != c.service {
			t.Errorf("%s: parent %s, service %s; want %s (%s) and %s", c.what, c.span.parentID, c.span.service, c.parent, c.parentName, c.service)
		}
	}
	if !strings.Contains(string(r.body), ";Parent="+invoke.spanID+";") {
		t.Errorf("_X_AMZN_TRACE_ID %q: want the invocation span %s as its parent", r.body, invoke.spanID)
	}
	// The function's log records carry the trace id.
	for {
		recs, err := n.logs.Recent(t.Context(), "fn", 10)
		if err != nil {
			t.Fatal(err)
		}
		var traced []string
		for _, rec := range recs {
			if rec.Message == "traced" {
				traced = append(traced, rec.TraceID)
			}
		}
		if len(traced) == 1 && traced[0] == traceID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the function's log line has trace ids %q, want %s", traced, traceID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
