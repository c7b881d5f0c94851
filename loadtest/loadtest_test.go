package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func server(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv
}

func TestClosedLoopCountIsExact(t *testing.T) {
	var hits atomic.Int64
	var gotBody, gotHeader, gotMethod atomic.Value
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		gotBody.Store(string(b))
		gotHeader.Store(r.Header.Get("X-Test"))
		gotMethod.Store(r.Method)
	})
	res, err := Run(context.Background(), Config{
		Target: srv.URL + "/hello", Concurrency: 8, Requests: 500, Duration: time.Minute,
		Method: "POST", Body: []byte("payload"), Header: http.Header{"X-Test": {"yes"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 500 || res.Sent != 500 || res.Answered != 500 || res.Statuses[200] != 500 {
		t.Fatalf("server saw %d, sent %d, answered %d, statuses %v; want 500 each", hits.Load(), res.Sent, res.Answered, res.Statuses)
	}
	if res.Latency.Count() != 500 {
		t.Errorf("histogram holds %d latencies, want 500", res.Latency.Count())
	}
	if gotBody.Load() != "payload" || gotHeader.Load() != "yes" || gotMethod.Load() != "POST" {
		t.Errorf("request: method %v body %v header %v", gotMethod.Load(), gotBody.Load(), gotHeader.Load())
	}
}

func TestDurationBoundStops(t *testing.T) {
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {})
	for _, cfg := range []Config{
		{Concurrency: 4},
		{Rate: 500},
	} {
		cfg.Target = srv.URL
		cfg.Duration = 300 * time.Millisecond
		start := time.Now()
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 10*cfg.Duration {
			t.Errorf("%s loop ran %s for a %s duration", cfg.Mode(), took, cfg.Duration)
		}
		if res.Answered == 0 {
			t.Errorf("%s loop answered nothing", cfg.Mode())
		}
	}
}

// TestOpenLoopShowsStall checks the coordinated-omission correction. The server holds the first
// request for stall; with one request in flight at most, the requests due during the stall can only
// be sent after it. Their latency counts from their due time, so far more than 10% of the 60 requests
// (the first ~20, due in the first stall/2) must show a latency of at least stall/2, and the first one
// at least stall. A slower machine only makes the latencies longer, so this cannot flake.
func TestOpenLoopShowsStall(t *testing.T) {
	const stall = 400 * time.Millisecond
	var first sync.Once
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		first.Do(func() { time.Sleep(stall) })
	})
	res, err := Run(context.Background(), Config{
		Target: srv.URL, Rate: 100, Requests: 60, MaxInFlight: 1, Duration: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answered != 60 {
		t.Fatalf("answered %d, want 60 (errors %v)", res.Answered, res.Errors)
	}
	if got := res.Latency.Max(); got < stall {
		t.Errorf("max latency %s, want at least the stall %s", got, stall)
	}
	if got := res.Latency.Quantile(0.90); got < stall/2 {
		t.Errorf("p90 latency %s, want at least %s: the stall is hidden (coordinated omission)", got, stall/2)
	}
	if res.Late < 10 {
		t.Errorf("late %d, want the requests due during the stall counted", res.Late)
	}
	// The service time (from the actual send) hides the stall for all but the first request.
	if res.Service.Max() < stall {
		t.Errorf("service max %s, want at least %s", res.Service.Max(), stall)
	}
}

func TestStatusesAndErrorsCounted(t *testing.T) {
	var n atomic.Int64
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	res, err := Run(context.Background(), Config{Target: srv.URL, Concurrency: 4, Requests: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.Statuses[200] != 150 || res.Statuses[500] != 50 || res.ErrorCount() != 50 {
		t.Fatalf("statuses %v errors %d; want 150×200, 50×500", res.Statuses, res.ErrorCount())
	}
	var text bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "500×50") {
		t.Errorf("text summary lacks the 500s:\n%s", text.String())
	}

	// A closed port: every request fails with a transport error.
	srv2 := httptest.NewServer(http.NotFoundHandler())
	url := srv2.URL
	srv2.Close()
	res, err = Run(context.Background(), Config{Target: url, Concurrency: 2, Requests: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors["connection refused"] != 10 || res.ErrorCount() != 10 {
		t.Errorf("error kinds %v, want 10 connection refused", res.Errors)
	}
}

func TestNonLoopbackRefused(t *testing.T) {
	for _, target := range []string{"http://10.0.0.1/", "http://[2001:db8::1]:80/", "http://192.168.1.1:8080/x", "ftp://127.0.0.1/"} {
		_, err := Run(context.Background(), Config{Target: target, Concurrency: 1, Requests: 1})
		if err == nil {
			t.Errorf("%s: accepted", target)
		}
	}
	_, err := Run(context.Background(), Config{Target: "http://10.1.2.3/", Concurrency: 1})
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("error %v does not explain the refusal", err)
	}
	for _, target := range []string{"http://127.0.0.1:1/", "http://127.9.9.9/", "http://[::1]:8080/", "http://localhost/"} {
		if _, err := CheckTarget(context.Background(), target); err != nil {
			t.Errorf("%s refused: %v", target, err)
		}
	}
	if err := loopbackOnly("tcp", "93.184.216.34:80", nil); err == nil {
		t.Error("dialer accepted a non-loopback address")
	}
}

func TestReports(t *testing.T) {
	var n atomic.Int64
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	res, err := Run(context.Background(), Config{Target: srv.URL + "/a?b=<c>&d", Rate: 400, Duration: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	var js bytes.Buffer
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Mode      string             `json:"mode"`
		LatencyMS map[string]float64 `json:"latency_ms"`
		Statuses  map[string]int64   `json:"statuses"`
		PerSecond []SecondSummary    `json:"per_second"`
	}
	if err := json.Unmarshal(js.Bytes(), &sum); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"p50", "p90", "p99", "p99.9", "max"} {
		if v, ok := sum.LatencyMS[k]; !ok || v <= 0 {
			t.Errorf("json latency_ms[%s] = %v, %v", k, v, ok)
		}
	}
	if sum.Mode != "open" || sum.Statuses["503"] == 0 || len(sum.PerSecond) < 1 {
		t.Errorf("json summary: %s", js.String())
	}

	var page bytes.Buffer
	if err := res.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), "<script") {
		t.Error("report has a script")
	}
	dec := xml.NewDecoder(&page)
	dec.Strict = true
	var svgs, polylines int
	var stack []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("report is not well-formed: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			stack = append(stack, tok.Name.Local)
			switch tok.Name.Local {
			case "svg":
				svgs++
			case "polyline":
				polylines++
				for _, a := range tok.Attr {
					if a.Name.Local == "points" && strings.Count(a.Value, ",") < 2 {
						t.Errorf("polyline with points %q", a.Value)
					}
				}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Errorf("unclosed elements %v", stack)
	}
	if svgs != 2 || polylines != 3 {
		t.Errorf("report has %d svg and %d polylines, want 2 and 3", svgs, polylines)
	}
}

func TestHistogramAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := NewHist(3)
	var samples []time.Duration
	for range 100000 {
		// Log-normal latencies around 1ms, spanning µs to seconds, in whole microseconds.
		us := max(1, int64(math.Exp(rng.NormFloat64()*1.5+math.Log(1000))))
		d := time.Duration(us) * time.Microsecond
		samples = append(samples, d)
		h.Record(d)
	}
	slices.Sort(samples)
	for _, q := range []float64{0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
		want := samples[max(0, int(math.Ceil(q*float64(len(samples))))-1)]
		got := h.Quantile(q)
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
			t.Errorf("q%v: histogram %s, samples %s (error %.3f%%)", q, got, want, rel*100)
		}
	}
	if h.Max() < samples[len(samples)-1] || float64(h.Max()) > float64(samples[len(samples)-1])*1.01 {
		t.Errorf("max %s, samples %s", h.Max(), samples[len(samples)-1])
	}
}

func TestCLI(t *testing.T) {
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {})
	var out, errOut bytes.Buffer
	cmd := NewCommand(&out, &errOut)
	cmd.SetArgs([]string{"http", "-c", "2", "-n", "20", "--json", "-H", "A: b", srv.URL})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err, errOut.String())
	}
	var sum JSONSummary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil || sum.Answered != 20 {
		t.Fatalf("output %s (%v)", out.String(), err)
	}
	cmd = NewCommand(&out, &errOut)
	cmd.SetArgs([]string{"http", "--rate", "10", "--concurrency", "2", srv.URL})
	if err := cmd.Execute(); err == nil {
		t.Error("--rate with --concurrency accepted")
	}
	cmd = NewCommand(&out, &errOut)
	cmd.SetArgs([]string{"http", "--duration", "11m", srv.URL})
	if err := cmd.Execute(); err == nil {
		t.Error("--duration 11m accepted")
	}
}
