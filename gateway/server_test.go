package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/bus"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from what the gateway does")

// fakeInvoker plays the bus: it records every invocation and answers with script (an empty 200
// response when script is nil). Each invocation is also sent to seen, if set, for tests that wait
// for invocations made outside their request (WebSocket events).
type fakeInvoker struct {
	mu     sync.Mutex
	calls  []bus.Invocation
	script func(ctx context.Context, inv bus.Invocation) ([]byte, error)
	seen   chan bus.Invocation
}

func (f *fakeInvoker) Invoke(ctx context.Context, inv bus.Invocation) ([]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, inv)
	script, seen := f.script, f.seen
	f.mu.Unlock()
	if seen != nil {
		seen <- inv
	}
	if script == nil {
		return []byte(`{"statusCode":200}`), nil
	}
	return script(ctx, inv)
}

// setScript replaces the answers and forgets the invocations so far.
func (f *fakeInvoker) setScript(script func(ctx context.Context, inv bus.Invocation) ([]byte, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script, f.calls = script, nil
}

func (f *fakeInvoker) invocations() []bus.Invocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// of returns the invocations of function.
func (f *fakeInvoker) of(function string) []bus.Invocation {
	var out []bus.Invocation
	for _, inv := range f.invocations() {
		if inv.Function == function {
			out = append(out, inv)
		}
	}
	return out
}

// answer returns a script that answers every invocation with out.
func answer(out string) func(context.Context, bus.Invocation) ([]byte, error) {
	return func(context.Context, bus.Invocation) ([]byte, error) { return []byte(out), nil }
}

// byFunction returns a script that answers each function with its entry of outs ("{}" when none).
func byFunction(outs map[string]string) func(context.Context, bus.Invocation) ([]byte, error) {
	return func(_ context.Context, inv bus.Invocation) ([]byte, error) {
		if out, ok := outs[inv.Function]; ok {
			return []byte(out), nil
		}
		return []byte("{}"), nil
	}
}

// fakeResolver resolves "function:qualifier" to a target; anything else does not resolve.
type fakeResolver map[string]functions.Target

func (r fakeResolver) Resolve(function, qualifier string) (functions.Target, error) {
	t, ok := r[function+":"+qualifier]
	if !ok {
		return functions.Target{}, fmt.Errorf("function %q (qualifier %q) not found", function, qualifier)
	}
	return t, nil
}

// testServer is a gateway serving on a real listener of 127.0.0.1.
type testServer struct {
	*Server
	base   string // http://127.0.0.1:PORT
	port   string
	client *http.Client
}

// startServer serves a gateway for cfg and inv until the test ends, then shuts it down and checks
// that Serve returned cleanly.
func startServer(t *testing.T, cfg Config, inv Invoker) *testServer {
	t.Helper()
	s, err := New(cfg, inv)
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, s)
}

func serveOn(t *testing.T, s *Server) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &testServer{Server: s, base: "http://" + ln.Addr().String(), port: port, client: &http.Client{Transport: tr}}
}

// response is what a client got.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) String() string { return fmt.Sprintf("%d %v %s", r.status, r.header, r.body) }

// do sends req and reads the whole response.
func (ts *testServer) do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// get sends a GET for path with headers given as name, value pairs.
func (ts *testServer) get(t *testing.T, path string, headers ...string) response {
	t.Helper()
	return ts.do(t, ts.request(t, "GET", path, "", headers...))
}

func (ts *testServer) request(t *testing.T, method, path, body string, headers ...string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	return req
}

// wantGatewayError checks a gateway-made error response: status, API Gateway's JSON body, the
// content type and a request id.
func wantGatewayError(t *testing.T, what string, r response, status int, message string) {
	t.Helper()
	want := `{"message":"` + message + `"}`
	if r.status != status || r.body != want {
		t.Errorf("%s: %d %s, want %d %s", what, r.status, r.body, status, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	if id := r.header.Get(HeaderRequestID); !requestIDPattern.MatchString(id) {
		t.Errorf("%s: apigw-requestid %q", what, id)
	}
}

// decodeEvent decodes an invocation's payload 2.0 event.
func decodeEvent(t *testing.T, inv bus.Invocation) map[string]any {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(inv.Payload, &ev); err != nil {
		t.Fatalf("event %s: %v", inv.Payload, err)
	}
	return ev
}

// path returns the value at a dotted path of a decoded JSON document, nil when absent.
func path(v any, dotted string) any {
	for key := range strings.SplitSeq(dotted, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[key]
	}
	return v
}

// Golden files.
//
// Each testdata/*.txtar archive is one request through the gateway of goldenConfig, with:
//
//   - the comment: "key: value" directives. "error: NAME" makes the function fail with one of
//     goldenErrors instead of answering; "body-size: N" sends a body of N bytes "x".
//   - request: the request line ("METHOD TARGET", the target sent exactly as written), header
//     lines in order (a Host line sets the Host header), a blank line and the body, without the
//     file's final newline.
//   - request-body.base64 (optional): the body, as base64, for bytes that are not text.
//   - output: what the function answers.
//   - invocation (written by -update): what the gateway asked the bus to run.
//   - event (written by -update): the event the function received, with volatile fields
//     normalised: requestContext.requestId (checked to equal the apigw-requestid response header and
//     the invocation's request id) is REQUEST_ID, time and timeEpoch (checked to agree) are TIME
//     and 0, and headers.x-forwarded-port (checked to be the listener's port) is PORT. Absent when
//     the function must not run.
//   - response (written by -update): the status line, every header but Date in sorted order (with
//     apigw-requestid as REQUEST_ID), a blank line and the body, then a newline. A body that is
//     not UTF-8 is written as "[base64] " and its base64.
//
// go test ./gateway -run TestGolden -update rewrites invocation, event and response.
//
// The archives are read and written by the few lines below rather than golang.org/x/tools/txtar:
// x/tools is in the module graph but not required by go.mod, and the format is simple enough.

// goldenErrors are the failures an archive's "error:" directive can script.
var goldenErrors = map[string]error{
	"function-error":     fmt.Errorf("%w: Unhandled: boom", bus.ErrFunctionError),
	"function-timeout":   fmt.Errorf("%w: Task timed out after 3.00 seconds", bus.ErrFunctionTimeout),
	"response-too-large": bus.ErrResponseTooLarge,
	"throttled":          fmt.Errorf("%w: the function is at its maxConcurrency", bus.ErrThrottled),
	"overloaded":         fmt.Errorf("%w: every worker is full", bus.ErrOverloaded),
	"no-workers":         bus.ErrNoWorkers,
	"worker-lost":        bus.ErrWorkerLost,
	// integration-timeout waits for the route's timeout to pass.
	"integration-timeout": nil,
}

// goldenConfig is the gateway of the golden files: a pets API on the root, with a dev stage; a
// precedence API without a $default route under /prec; a CORS API under /cors.
func goldenConfig() Config {
	return Config{
		BodyLimit: 512,
		Resolver: fakeResolver{
			"root:":        {Function: "root", FunctionID: "fn-root", Version: 1, Timeout: 3 * time.Second},
			"hello:":       {Function: "hello", FunctionID: "fn-hello", Version: 2, Timeout: 3 * time.Second},
			"items:":       {Function: "items", FunctionID: "fn-items", Version: 3, Timeout: 3 * time.Second},
			"pets:live":    {Function: "pets", FunctionID: "fn-pets", Version: 7, Timeout: 5 * time.Second, MaxConcurrency: 10},
			"pets:":        {Function: "pets", FunctionID: "fn-pets", Version: 8, Timeout: 5 * time.Second},
			"echo:":        {Function: "echo", FunctionID: "fn-echo", Version: 1, Timeout: time.Second},
			"slow:":        {Function: "slow", FunctionID: "fn-slow", Version: 1, Timeout: time.Minute},
			"fallback:":    {Function: "fallback", FunctionID: "fn-fallback", Version: 4, Timeout: 3 * time.Second},
			"prec-test:":   {Function: "prec-test", FunctionID: "fn-prec-test", Version: 1, Timeout: 3 * time.Second},
			"prec-proxy:":  {Function: "prec-proxy", FunctionID: "fn-prec-proxy", Version: 1, Timeout: 3 * time.Second},
			"cors-things:": {Function: "cors-things", FunctionID: "fn-cors", Version: 1, Timeout: 3 * time.Second},
		},
		APIs: []API{
			{
				ID: "a1b2c3d4e5",
				Stages: []Stage{
					{Name: DefaultStage},
					{Name: "dev", Variables: map[string]string{"env": "dev", "table": "pets-dev"}},
				},
				Routes: []Route{
					{Key: "GET /", Function: "root"},
					{Key: "GET /hello", Function: "hello"},
					{Key: "GET /items/{id}", Function: "items"},
					{Key: "GET /pets/{proxy+}", Function: "pets:live"},
					{Key: "POST /pets", Function: "pets"},
					{Key: "ANY /echo", Function: "echo", Timeout: 10 * time.Second},
					{Key: "GET /slow", Function: "slow", Timeout: 50 * time.Millisecond},
					{Key: "GET /ghost", Function: "ghost"},
					{Key: "$default", Function: "fallback"},
				},
			},
			{
				ID:    "prec",
				Mount: "/prec",
				Routes: []Route{
					{Key: "GET /test/{id}", Function: "prec-test"},
					{Key: "ANY /{proxy+}", Function: "prec-proxy"},
				},
			},
			{
				ID:    "corsapi",
				Mount: "/cors",
				CORS: &CORS{AllowOrigins: []string{"https://app.example.com"}, AllowMethods: []string{"GET", "POST"},
					AllowHeaders: []string{"content-type", "x-trace"}, ExposeHeaders: []string{"x-result"}, MaxAge: 600,
					AllowCredentials: true},
				Routes: []Route{{Key: "ANY /things", Function: "cors-things"}},
			},
		},
	}
}

type archiveFile struct {
	name string
	data []byte
}

type archive struct {
	comment []byte
	files   []archiveFile
}

func (a *archive) get(name string) ([]byte, bool) {
	for _, f := range a.files {
		if f.name == name {
			return f.data, true
		}
	}
	return nil, false
}

// set replaces the file name, adding it when missing; nil data removes it.
func (a *archive) set(name string, data []byte) {
	for i, f := range a.files {
		if f.name == name {
			if data == nil {
				a.files = slices.Delete(a.files, i, i+1)
			} else {
				a.files[i].data = data
			}
			return
		}
	}
	if data != nil {
		a.files = append(a.files, archiveFile{name, data})
	}
}

// directive returns the value of a "key: value" line of the comment.
func (a *archive) directive(key string) string {
	for line := range strings.Lines(string(a.comment)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// marker returns the file name of a "-- name --" line.
func marker(line string) (string, bool) {
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "-- ") || !strings.HasSuffix(line, " --") || len(line) < 7 {
		return "", false
	}
	return strings.TrimSpace(line[3 : len(line)-3]), true
}

func parseArchive(data []byte) *archive {
	a := &archive{}
	cur := &a.comment
	for line := range strings.Lines(string(data)) {
		if name, ok := marker(line); ok {
			a.files = append(a.files, archiveFile{name: name, data: []byte{}})
			cur = &a.files[len(a.files)-1].data
			continue
		}
		*cur = append(*cur, line...)
	}
	return a
}

func formatArchive(a *archive) []byte {
	var b bytes.Buffer
	b.Write(a.comment)
	for _, f := range a.files {
		fmt.Fprintf(&b, "-- %s --\n", f.name)
		b.Write(f.data)
		if len(f.data) > 0 && f.data[len(f.data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// goldenRequest builds the request of an archive, to send to base.
func goldenRequest(t *testing.T, a *archive, base string) *http.Request {
	t.Helper()
	text, ok := a.get("request")
	if !ok {
		t.Fatal("no request in the archive")
	}
	head, body, _ := strings.Cut(string(text), "\n\n")
	body = strings.TrimSuffix(body, "\n")
	lines := strings.Split(strings.TrimSuffix(head, "\n"), "\n")
	fields := strings.Fields(lines[0])
	if len(fields) < 2 {
		t.Fatalf("request line %q", lines[0])
	}
	method, target := fields[0], fields[1]
	if b64, ok := a.get("request-body.base64"); ok {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b64)))
		if err != nil {
			t.Fatal(err)
		}
		body = string(raw)
	}
	if n := a.directive("body-size"); n != "" {
		size, err := strconv.Atoi(n)
		if err != nil {
			t.Fatal(err)
		}
		body = strings.Repeat("x", size)
	}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+"/", r)
	if err != nil {
		t.Fatal(err)
	}
	// The target goes on the wire exactly as written: Opaque is not escaped again.
	p, q, _ := strings.Cut(target, "?")
	req.URL.Opaque, req.URL.RawQuery = p, q
	for _, h := range lines[1:] {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			t.Fatalf("header line %q", h)
		}
		if v = strings.TrimSpace(v); strings.EqualFold(k, "Host") {
			req.Host = v
		} else {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "golden-test/1.0")
	}
	return req
}

// normaliseEvent checks the volatile fields of an event and replaces them (see Golden files).
func normaliseEvent(t *testing.T, payload []byte, requestID, port string) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("event %s: %v", payload, err)
	}
	rc, _ := ev["requestContext"].(map[string]any)
	if rc == nil {
		t.Fatalf("event without requestContext: %s", payload)
	}
	if got := rc["requestId"]; got != requestID {
		t.Errorf("requestContext.requestId %v, want the apigw-requestid %q", got, requestID)
	}
	rc["requestId"] = "REQUEST_ID"
	at, err := time.Parse(eventTimeLayout, fmt.Sprint(rc["time"]))
	epoch, err2 := rc["timeEpoch"].(json.Number).Int64()
	if err != nil || err2 != nil || at.Unix() != epoch/1000 {
		t.Errorf("requestContext.time %v and timeEpoch %v disagree (%v, %v)", rc["time"], rc["timeEpoch"], err, err2)
	}
	rc["time"], rc["timeEpoch"] = "TIME", 0
	if h, _ := ev["headers"].(map[string]any); h != nil {
		if p, ok := h["x-forwarded-port"]; ok {
			if p != port {
				t.Errorf("x-forwarded-port %v, want %s", p, port)
			}
			h["x-forwarded-port"] = "PORT"
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(ev); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// describeInvocation writes what the gateway asked of the bus; arrival is the event's timeEpoch.
func describeInvocation(inv bus.Invocation, arrival time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "function: %s\nfunctionId: %s\nversion: %d\ntimeout: %v\nmaxConcurrency: %d\n",
		inv.Function, inv.FunctionID, inv.Version, inv.Timeout, inv.MaxConcurrency)
	// The deadline is the arrival (in ns; the event has ms) plus the route's timeout.
	fmt.Fprintf(&b, "deadline: arrival + %v\n", inv.Deadline.Sub(arrival).Truncate(time.Millisecond))
	if inv.TraceParent != "" {
		fmt.Fprintf(&b, "traceparent: %s\n", inv.TraceParent)
	}
	return b.Bytes()
}

// dumpResponse writes a response as the archives hold it.
func dumpResponse(t *testing.T, r response, requestID string) []byte {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\n", r.status, http.StatusText(r.status))
	names := make([]string, 0, len(r.header))
	for k := range r.header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if k == "Date" {
			continue
		}
		for _, v := range r.header[k] {
			if http.CanonicalHeaderKey(k) == "Apigw-Requestid" {
				if v != requestID {
					t.Errorf("apigw-requestid %q, want %q", v, requestID)
				}
				v = "REQUEST_ID"
			}
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	if utf8.ValidString(r.body) {
		b.WriteString(r.body)
	} else {
		b.WriteString("[base64] " + base64.StdEncoding.EncodeToString([]byte(r.body)))
	}
	b.WriteString("\n")
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	names, err := filepath.Glob("testdata/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no golden files")
	}
	inv := &fakeInvoker{}
	ts := startServer(t, goldenConfig(), inv)
	for _, name := range names {
		t.Run(strings.TrimSuffix(filepath.Base(name), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			a := parseArchive(data)
			output, _ := a.get("output")
			failure := a.directive("error")
			if _, ok := goldenErrors[failure]; failure != "" && !ok {
				t.Fatalf("unknown error %q", failure)
			}
			inv.setScript(func(ctx context.Context, _ bus.Invocation) ([]byte, error) {
				switch failure {
				case "":
					return output, nil
				case "integration-timeout":
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return nil, goldenErrors[failure]
			})
			r := ts.do(t, goldenRequest(t, a, ts.base))

			requestID := r.header.Get(HeaderRequestID)
			if !requestIDPattern.MatchString(requestID) {
				t.Errorf("apigw-requestid %q", requestID)
			}
			var event, invocation []byte
			switch calls := inv.invocations(); len(calls) {
			case 0:
			case 1:
				call := calls[0]
				if call.RequestID != requestID {
					t.Errorf("invocation request id %q, want %q", call.RequestID, requestID)
				}
				event = normaliseEvent(t, call.Payload, requestID, ts.port)
				var ev struct {
					RequestContext struct{ TimeEpoch int64 } `json:"requestContext"`
				}
				json.Unmarshal(call.Payload, &ev)
				invocation = describeInvocation(call, time.UnixMilli(ev.RequestContext.TimeEpoch))
			default:
				t.Fatalf("%d invocations, want at most one", len(calls))
			}
			got := map[string][]byte{"event": event, "invocation": invocation, "response": dumpResponse(t, r, requestID)}
			if *update {
				for _, f := range []string{"invocation", "event", "response"} {
					a.set(f, got[f])
				}
				if err := os.WriteFile(name, formatArchive(a), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, f := range []string{"invocation", "event", "response"} {
				want, _ := a.get(f)
				if !bytes.Equal(got[f], want) {
					switch {
					case want == nil:
						t.Errorf("%s: got one, want none (the function must not run):\n%s", f, got[f])
					case got[f] == nil:
						t.Errorf("%s: got none, want:\n%s", f, want)
					default:
						t.Errorf("%s differs:\n--- got\n%s--- want\n%s", f, got[f], want)
					}
				}
			}
		})
	}
}

// TestGoldenArchiveFormat checks the archive reader and writer against each other.
func TestGoldenArchiveFormat(t *testing.T) {
	in := "comment: x\n-- request --\nGET / HTTP/1.1\n\n-- output --\n\"hi\"\n-- empty --\n"
	a := parseArchive([]byte(in))
	if got := a.directive("comment"); got != "x" {
		t.Errorf("directive %q", got)
	}
	if out, _ := a.get("output"); string(out) != "\"hi\"\n" {
		t.Errorf("output %q", out)
	}
	if got := string(formatArchive(a)); got != in {
		t.Errorf("round trip:\n%s\nwant\n%s", got, in)
	}
	a.set("output", nil)
	a.set("event", []byte("{}"))
	if got, want := string(formatArchive(a)), "comment: x\n-- request --\nGET / HTTP/1.1\n\n-- empty --\n-- event --\n{}\n"; got != want {
		t.Errorf("after set:\n%s\nwant\n%s", got, want)
	}
}
