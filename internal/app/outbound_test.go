package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/sigv4"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

// The access key the fetch function signs with.
const (
	outboundKeyID     = "AKIAOUTBOUNDEXAMPLE1"
	outboundKeySecret = "outbound/secret/EXAMPLEKEY0123456789"
)

// fetched is what the fetch test function answers.
type fetched struct {
	Status int    `json:"status"`
	Echo   string `json:"echo"`
	Body   string `json:"body"`
	Error  string `json:"error"`
	Calls  int    `json:"calls"`
}

// outboundServer is a loopback service the fetch function calls: /echo answers the method, the
// X-Test header and the body; /bin answers bytes of every value; /big answers 3 MB; /slow waits
// 3 s; /redirect-in and /redirect-out redirect to /echo and to a host the function may not reach.
func outboundServer(t *testing.T, requests *atomic.Int64) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo", r.Method+" "+r.Header.Get("X-Test"))
		w.WriteHeader(201)
		w.Write(b)
	})
	mux.HandleFunc("/bin", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		b := make([]byte, 512)
		for i := range b {
			b[i] = byte(i)
		}
		w.Write(b)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write(bytes.Repeat([]byte("x"), 3<<20))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	verifier, err := sigv4.New(sigv4.Config{Keys: []sigv4.Credentials{{AccessKeyID: outboundKeyID, SecretAccessKey: outboundKeySecret}}})
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("/signed", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		b, _ := io.ReadAll(r.Body)
		id, err := verifier.Verify(sigv4.Request{Method: r.Method, RawPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header, Body: b})
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		w.Write([]byte("signed by " + id))
	})
	mux.HandleFunc("/redirect-in", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/echo", http.StatusFound)
	})
	mux.HandleFunc("/redirect-out", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.test:1/", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// fetch has the fetch function request url (with method, body and count) and decodes its answer.
func fetch(t *testing.T, n *Node, url, method, body string, count int) (int, fetched) {
	t.Helper()
	q := fmt.Sprintf("/fetch?url=%s&method=%s&count=%d", url, method, count)
	if strings.HasSuffix(url, "/signed") {
		q += "&sign=1"
	}
	req := newRequest(t, "POST", "http://"+n.GatewayAddr()+q, strings.NewReader(body))
	req.Header.Set("X-Test", "from-the-client")
	r := do(t, req)
	var f fetched
	if r.status == 200 {
		if err := json.Unmarshal(r.body, &f); err != nil {
			t.Fatalf("fetch %s: %s: %v", url, r.body, err)
		}
	}
	return r.status, f
}

// TestOutboundHTTP runs a function that calls out with plain net/http, against a loopback service
// its allow-list names.
func TestOutboundHTTP(t *testing.T) {
	var requests atomic.Int64
	srv := outboundServer(t, &requests)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	src, err := filepath.Abs("testdata/functions/fetch")
	if err != nil {
		t.Fatal(err)
	}
	stack := fmt.Sprintf(`version: 1
name: outbound
functions:
  fetch:
    source: %q
    timeout: 1s
    environment: {KEY_ID: %s, KEY_SECRET: %s}
    allowedOutboundHosts: ["http://127.0.0.1:%s", "http://named.test:%s"]
apis:
  web:
    type: http
    routes:
      POST /fetch: {function: fetch}
`, src, outboundKeyID, outboundKeySecret, port, port)
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(stack), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, path, newDataDir(t), func(o *Options) {
		o.WorkerEnv = append(o.WorkerEnv, envTestHosts+"=named.test=127.0.0.1,elsewhere.test=127.0.0.1")
		o.OutboundMaxResponseMB = 2 // under the default 6, which /big's 3 MB fits
	})
	t.Cleanup(func() { n.Stop(context.Background()) })
	base := srv.URL

	// An allowed round trip: method, header and body reach the service; status, header and body
	// come back exactly.
	status, f := fetch(t, n, base+"/echo", "PUT", "payload", 1)
	if status != 200 || f.Error != "" || f.Status != 201 || f.Echo != "PUT from-the-client" || f.Body != base64.StdEncoding.EncodeToString([]byte("payload")) {
		t.Fatalf("allowed call: %d %+v", status, f)
	}
	status, f = fetch(t, n, base+"/bin", "GET", "", 1)
	want := make([]byte, 512)
	for i := range want {
		want[i] = byte(i)
	}
	if got, _ := base64.StdEncoding.DecodeString(f.Body); status != 200 || f.Status != 200 || !bytes.Equal(got, want) {
		t.Fatalf("binary body: %d %+v", status, f)
	}
	// A large body goes out and comes back whole.
	large := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	if status, f = fetch(t, n, base+"/echo", "POST", large, 1); status != 200 || f.Body != base64.StdEncoding.EncodeToString([]byte(large)) {
		t.Fatalf("a 1 MiB body: %d, %d bytes back, error %q", status, len(f.Body), f.Error)
	}
	// The AWS SDK for Go v2's signer signs a request that goes out through the host call as it
	// would natively: the service checks the Signature Version 4.
	status, f = fetch(t, n, base+"/signed", "POST", `{"item":1}`, 1)
	if got, _ := base64.StdEncoding.DecodeString(f.Body); status != 200 || f.Status != 200 || string(got) != "signed by "+outboundKeyID {
		t.Fatalf("signed request: %d %+v (%s)", status, f, got)
	}
	// A redirect to an allowed URL is followed.
	if status, f = fetch(t, n, base+"/redirect-in", "GET", "", 1); status != 200 || f.Status != 201 {
		t.Fatalf("redirect to an allowed URL: %d %+v", status, f)
	}

	before := requests.Load()
	for _, c := range []struct{ url, want string }{
		// A host and port the list does not name.
		{"http://127.0.0.1:1/echo", "outbound request to http://127.0.0.1:1 is not allowed for function fetch; add it to allowedOutboundHosts"},
		// A name the list allows, but it resolves to a loopback address the list names only by number.
		{"http://named.test:" + port + "/echo", "127.0.0.1"},
		// A redirect to a host the list does not name.
		{base + "/redirect-out", "elsewhere.test"},
		// A response over the limit (2 MB here, by --outbound-max-response-mb).
		{base + "/big", "over the limit"},
	} {
		status, f := fetch(t, n, c.url, "GET", "", 1)
		if status != 200 || f.Error == "" || !strings.Contains(f.Error, c.want) || f.Calls != 0 {
			t.Errorf("%s: %d %+v, want an error naming %q", c.url, status, f, c.want)
		}
	}
	if got := requests.Load() - before; got != 1 { // only /big was reached
		t.Errorf("the refused calls reached the service %d times, want 1 (the oversized answer)", got)
	}

	// An invocation makes at most 100 requests.
	before = requests.Load()
	if status, f := fetch(t, n, base+"/echo", "GET", "", 1000); status != 200 || f.Calls != 100 || !strings.Contains(f.Error, "at most 100") {
		t.Errorf("1000 calls: %d %+v", status, f)
	}
	if got := requests.Load() - before; got != 100 {
		t.Errorf("the service saw %d requests, want 100", got)
	}

	// A call still waiting at the function's timeout (1 s) fails the invocation; the worker goes on.
	if status, _ := fetch(t, n, base+"/slow", "GET", "", 1); status != 500 {
		t.Errorf("a call past the function's timeout: %d, want 500", status)
	}
	if status, f := fetch(t, n, base+"/echo", "POST", "after", 1); status != 200 || f.Status != 201 {
		t.Errorf("after a timeout: %d %+v", status, f)
	}

	// /metrics counts them by destination (the allow-list entry) and outcome, summed over the
	// workers as their heartbeats bring the counts in: 100 + 4 ok calls to the service at least (one
	// worker may have run the rest), 3 refused, 1 too large, 1 timeout.
	entry := fmt.Sprintf(`function="fetch",host="http://127.0.0.1:%s"`, port)
	waitUntil(t, "the outbound counts reach /metrics", func() bool {
		return metricValue(t, n, `gatehouse_outbound_requests_total{`+entry+`,outcome="ok"`) >= 104 &&
			metricValue(t, n, `gatehouse_outbound_requests_total{function="fetch",host="refused",outcome="refused"`) >= 3 &&
			metricValue(t, n, `gatehouse_outbound_requests_total{`+entry+`,outcome="too_large"`) >= 1 &&
			metricValue(t, n, `gatehouse_outbound_requests_total{`+entry+`,outcome="timeout"`) >= 1
	})
}

// TestWeatherSample runs samples/weather against a forecast service started here, as
// docs/abi.md shows it; its own stack file parses.
func TestWeatherSample(t *testing.T) {
	root := filepath.Join("..", "..", "samples", "weather")
	if _, err := stackfile.Load(filepath.Join(root, "gatehouse.yaml")); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/forecast" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"city": r.URL.Query().Get("city"), "tempC": 21.5, "summary": "sunny"})
	}))
	defer srv.Close()
	src, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	stack := fmt.Sprintf(`version: 1
name: weather
functions:
  weather:
    source: %q
    environment: {WEATHER_API: %q}
    allowedOutboundHosts: [%q]
apis:
  web:
    type: http
    routes:
      GET /weather/{city}: {function: weather}
`, src, srv.URL, srv.URL)
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(stack), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, path, newDataDir(t))
	t.Cleanup(func() { n.Stop(context.Background()) })
	r := do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+"/weather/oslo", nil))
	if r.status != 200 || string(r.body) != `{"city":"oslo","summary":"sunny","temperature":"21.5 °C"}` {
		t.Fatalf("GET /weather/oslo: %d %s", r.status, r.body)
	}
	srv.Close()
	r = do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+"/weather/oslo", nil))
	if r.status != 502 || !strings.Contains(string(r.body), "the forecast service did not answer") {
		t.Fatalf("with the service gone: %d %s", r.status, r.body)
	}
}
