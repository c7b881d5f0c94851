package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"gatehouse.dev/gatehouse/internal/sigv4"
)

const (
	testKeyID  = "AKIDLOADTEST"
	testSecret = "loadtest-secret"
)

// wsServer imitates a Gatehouse WebSocket API at /chat: every message is answered with an event-like
// frame that holds the connection id and the message (as wsecho does), except those the drop
// function picks; its @connections API takes SigV4-signed posts; and an admin-like listing names the
// connections with their user agents.
type wsServer struct {
	t        *testing.T
	srv      *httptest.Server
	verifier *sigv4.Verifier
	// deny, when set, answers a handshake with that status instead of upgrading.
	deny func(n int64) int
	// drop, when set, leaves a message unanswered.
	drop func(msg []byte) bool
	// noise sends every connection an unrelated frame before the answer to its first message.
	noise bool

	handshakes atomic.Int64
	dropped    atomic.Int64
	mu         sync.Mutex
	conns      map[string]*serverConn
	order      []string
	closeCodes map[int]int
	remoteIPs  map[string]int
	messages   [][]byte
	posts      int
}

type serverConn struct {
	id, userAgent string
	wmu           sync.Mutex
	c             *websocket.Conn
}

func (sc *serverConn) send(data []byte) error {
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	return sc.c.WriteMessage(websocket.TextMessage, data)
}

func newWSServer(t *testing.T, configure func(*wsServer)) *wsServer {
	t.Helper()
	v, err := sigv4.New(sigv4.Config{Keys: []sigv4.Credentials{{AccessKeyID: testKeyID, SecretAccessKey: testSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	s := &wsServer{t: t, verifier: v, conns: map[string]*serverConn{}, closeCodes: map[int]int{}, remoteIPs: map[string]int{}}
	if configure != nil {
		configure(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /chat", s.handshake)
	mux.HandleFunc("POST /chat/@connections/{id}", s.post)
	mux.HandleFunc("GET /admin/v1/connections", s.list)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *wsServer) url() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/chat" }

func (s *wsServer) handshake(w http.ResponseWriter, r *http.Request) {
	n := s.handshakes.Add(1)
	if s.deny != nil {
		if status := s.deny(n); status != 0 {
			http.Error(w, "denied", status)
			return
		}
	}
	up := websocket.Upgrader{}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	sc := &serverConn{id: fmt.Sprintf("conn%020d", n), userAgent: r.UserAgent(), c: c}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	s.mu.Lock()
	s.conns[sc.id] = sc
	s.order = append(s.order, sc.id)
	s.remoteIPs[host]++
	s.mu.Unlock()
	go func() {
		defer c.Close()
		first := true
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				s.mu.Lock()
				if errors.As(err, &ce) {
					s.closeCodes[ce.Code]++
				} else {
					s.closeCodes[-1]++
				}
				delete(s.conns, sc.id)
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			s.messages = append(s.messages, msg)
			s.mu.Unlock()
			if s.noise && first {
				_ = sc.send([]byte(`{"type":"join","who":"someone"}`))
			}
			first = false
			if s.drop != nil && s.drop(msg) {
				s.dropped.Add(1)
				continue
			}
			answer, _ := json.Marshal(map[string]string{"routeKey": "echo", "connectionId": sc.id, "body": string(msg)})
			if err := sc.send(answer); err != nil {
				return
			}
		}
	}()
}

func (s *wsServer) post(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rawPath, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	if _, err := s.verifier.Verify(sigv4.Request{Method: r.Method, RawPath: rawPath, RawQuery: rawQuery, Host: r.Host, Header: r.Header, Body: body}); err != nil {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	s.mu.Lock()
	sc := s.conns[r.PathValue("id")]
	s.posts++
	s.mu.Unlock()
	if sc == nil {
		w.WriteHeader(http.StatusGone)
		return
	}
	if err := sc.send(body); err != nil {
		w.WriteHeader(http.StatusGone)
	}
}

func (s *wsServer) list(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer admintoken" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	type view struct {
		ID        string `json:"id"`
		UserAgent string `json:"userAgent"`
	}
	var out struct {
		Connections []view `json:"connections"`
	}
	s.mu.Lock()
	for _, id := range s.order {
		if sc, ok := s.conns[id]; ok {
			out.Connections = append(out.Connections, view{sc.id, sc.userAgent})
		}
	}
	s.mu.Unlock()
	json.NewEncoder(w).Encode(out)
}

// closed waits until the server saw n connections end, and returns the close codes.
func (s *wsServer) closed(t *testing.T, n int) map[int]int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		total := 0
		codes := map[int]int{}
		for k, v := range s.closeCodes {
			total += v
			codes[k] = v
		}
		s.mu.Unlock()
		if total >= n || time.Now().After(deadline) {
			return codes
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWSRoundTrip(t *testing.T) {
	s := newWSServer(t, nil)
	res, err := RunWS(context.Background(), WSConfig{
		Target: s.url(), Connections: 20, MessageRate: 200, Duration: 500 * time.Millisecond,
		Header: http.Header{"X-Test": {"yes"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 20 || res.Connect.Count() != 20 || s.handshakes.Load() != 20 {
		t.Fatalf("connected %d, handshake latencies %d, server handshakes %d; want 20 each (errors %v)",
			res.Connected, res.Connect.Count(), s.handshakes.Load(), res.Errors)
	}
	if res.Sent < 50 || res.Received != res.Sent || res.Lost != 0 || res.RTT.Count() != res.Sent {
		t.Errorf("sent %d received %d lost %d round trips %d; want every message answered", res.Sent, res.Received, res.Lost, res.RTT.Count())
	}
	if res.ErrorCount() != 0 || res.OtherFrames != 0 {
		t.Errorf("errors %v, other frames %d", res.Errors, res.OtherFrames)
	}
	if res.ClosedCleanly != 20 {
		t.Errorf("%d connections closed cleanly, want 20", res.ClosedCleanly)
	}
	if codes := s.closed(t, 20); codes[websocket.CloseNormalClosure] != 20 {
		t.Errorf("the server saw close codes %v, want 20×1000", codes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if int64(len(s.messages)) != res.Sent {
		t.Errorf("the server got %d messages, the tool sent %d", len(s.messages), res.Sent)
	}
	seen := map[string]bool{}
	for _, m := range s.messages {
		var msg struct{ Action, Data string }
		if err := json.Unmarshal(m, &msg); err != nil || msg.Action != "echo" || !strings.HasPrefix(msg.Data, "gh-lt-") {
			t.Fatalf("message %s: want the default template with a marker", m)
		}
		if seen[msg.Data] {
			t.Fatalf("marker %s sent twice", msg.Data)
		}
		seen[msg.Data] = true
	}
}

func TestWSLostAndOtherFrames(t *testing.T) {
	var n atomic.Int64
	s := newWSServer(t, func(s *wsServer) {
		s.drop = func([]byte) bool { return n.Add(1)%4 == 0 }
		s.noise = true
	})
	res, err := RunWS(context.Background(), WSConfig{
		Target: s.url(), Connections: 5, MessageRate: 100, Duration: 400 * time.Millisecond,
		ReplyTimeout: 300 * time.Millisecond, Message: `{"action":"talk","text":"{{seq}} at {{ts}}"}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.Lost != s.dropped.Load() || res.Received+res.Lost != res.Sent {
		t.Errorf("sent %d received %d lost %d; the server dropped %d", res.Sent, res.Received, res.Lost, s.dropped.Load())
	}
	if res.OtherFrames != 5 {
		t.Errorf("other frames %d, want the 5 unrelated ones", res.OtherFrames)
	}
	s.mu.Lock()
	first := string(s.messages[0])
	s.mu.Unlock()
	if strings.Contains(first, "{{") || !strings.Contains(first, `"action":"talk"`) {
		t.Errorf("message %s: the template was not filled", first)
	}
}

func TestWSConnectFailures(t *testing.T) {
	s := newWSServer(t, func(s *wsServer) {
		s.deny = func(n int64) int {
			if n%2 == 0 {
				return http.StatusForbidden
			}
			return 0
		}
	})
	res, err := RunWS(context.Background(), WSConfig{Target: s.url(), Connections: 10, ConnectRate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 5 || res.Errors["connect: status 403"] != 5 || res.ErrorCount() != 5 {
		t.Errorf("connected %d, errors %v; want 5 and 5×403", res.Connected, res.Errors)
	}

	// Nothing listens: every connect is refused.
	srv := httptest.NewServer(http.NotFoundHandler())
	u := "ws" + strings.TrimPrefix(srv.URL, "http")
	srv.Close()
	res, err = RunWS(context.Background(), WSConfig{Target: u, Connections: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 0 || res.Errors["connect: connection refused"] != 3 {
		t.Errorf("connected %d, errors %v; want 3 refused", res.Connected, res.Errors)
	}
}

func TestWSFanout(t *testing.T) {
	s := newWSServer(t, nil)
	const n, rounds = 12, 3
	for _, how := range []string{"message", "admin"} {
		t.Run(how, func(t *testing.T) {
			cfg := WSConfig{
				Target: s.url(), Connections: n, Fanout: true, FanoutRounds: rounds,
				AccessKey: testKeyID, SecretKey: testSecret,
			}
			if how == "message" {
				cfg.IDMessage = `{"action":"whoami"}`
			} else {
				cfg.IDAdmin, cfg.IDAdminToken = s.srv.URL, "admintoken"
			}
			res, err := RunWS(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.IDs != n || res.FanoutRounds != rounds || res.FanoutPosts[200] != n*rounds ||
				res.FanoutExpected != n*rounds || res.FanoutDelivered != n*rounds || res.FanoutDelivery.Count() != n*rounds ||
				res.FanoutComplete.Count() != rounds {
				t.Errorf("ids %d rounds %d posts %v expected %d delivered %d complete %d; want %d ids, %d rounds, all delivered",
					res.IDs, res.FanoutRounds, res.FanoutPosts, res.FanoutExpected, res.FanoutDelivered, res.FanoutComplete.Count(), n, rounds)
			}
			if res.ErrorCount() != 0 {
				t.Errorf("errors %v", res.Errors)
			}
			if res.FanoutComplete.Max() < res.FanoutDelivery.Max() {
				t.Errorf("a round completed (%s) before its last delivery (%s)", res.FanoutComplete.Max(), res.FanoutDelivery.Max())
			}
		})
	}

	// A wrong secret: the posts are refused and nothing is delivered.
	res, err := RunWS(context.Background(), WSConfig{
		Target: s.url(), Connections: 3, Fanout: true, FanoutRounds: 1, IDMessage: `{"action":"whoami"}`,
		AccessKey: testKeyID, SecretKey: "wrong", MessageRate: 0,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.FanoutPosts[403] != 3 || res.FanoutDelivered != 0 || res.Errors["post: status 403"] != 3 {
		t.Errorf("posts %v delivered %d errors %v; want 3×403", res.FanoutPosts, res.FanoutDelivered, res.Errors)
	}

	// Replies without a connection id: no ids, each one counted.
	quiet := newWSServer(t, func(s *wsServer) { s.drop = func([]byte) bool { return true } })
	res, err = RunWS(context.Background(), WSConfig{
		Target: quiet.url(), Connections: 2, Fanout: true, IDMessage: `{"action":"whoami"}`,
		AccessKey: testKeyID, SecretKey: testSecret, ReplyTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.IDs != 0 || res.Errors["ids: no connectionId in a reply"] != 2 {
		t.Errorf("ids %d errors %v", res.IDs, res.Errors)
	}
}

func TestWSSources(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux routes all of 127.0.0.0/8 to the loopback interface")
	}
	s := newWSServer(t, nil)
	res, err := RunWS(context.Background(), WSConfig{Target: s.url(), Connections: 9, Sources: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 9 || res.Sources != 3 {
		t.Fatalf("connected %d from %d sources (errors %v)", res.Connected, res.Sources, res.Errors)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		if s.remoteIPs[ip] != 3 {
			t.Errorf("connections by source address %v, want 3 from each of 127.0.0.1-3", s.remoteIPs)
			break
		}
	}
	cfg := WSConfig{Connections: 25_000}
	if err := cfg.normalize(); err != nil || cfg.Sources != 3 {
		t.Errorf("25,000 connections: %d sources (%v), want 3 by default", cfg.Sources, err)
	}
}

func TestWSRefused(t *testing.T) {
	for _, cfg := range []WSConfig{
		{Target: "ws://10.0.0.1/chat"},
		{Target: "ws://[2001:db8::1]:80/chat"},
		{Target: "http://127.0.0.1:1/chat"},
		{Target: "ws://127.0.0.1:1/chat", MessageRate: 10, Message: `{"action":"echo"}`},                // no {{seq}}
		{Target: "ws://127.0.0.1:1/chat", Fanout: true, IDMessage: "x"},                                 // no keys
		{Target: "ws://127.0.0.1:1/chat", Fanout: true, AccessKey: "a", SecretKey: "b"},                 // no way to learn ids
		{Target: "ws://127.0.0.1:1/chat", Connections: 10, ConnectRate: 0.01},                           // longer than 10m
		{Target: "ws://127.0.0.1:1/chat", Duration: 11 * time.Minute},                                   // too long
		{Target: "ws://[::1]:1/chat", Sources: 2},                                                       // IPv6 and sources
		{Target: "ws://127.0.0.1:1/chat", Fanout: true, IDAdmin: "http://10.0.0.1:8081", IDMessage: ""}, // admin elsewhere
	} {
		if _, err := RunWS(context.Background(), cfg); err == nil {
			t.Errorf("%+v: accepted", cfg)
		}
	}
}

func TestWSReportAndCLI(t *testing.T) {
	s := newWSServer(t, nil)
	report := t.TempDir() + "/ws.html"
	var out, errOut bytes.Buffer
	cmd := NewCommand(&out, &errOut)
	cmd.SetArgs([]string{"ws", "--connections", "4", "--message-rate", "100", "--duration", "300ms", "--json",
		"--report", report, "--post-fanout", "--fanout-rounds", "1", "--id-message", `{"action":"whoami"}`,
		"--access-key", testKeyID, "--secret-key", testSecret, s.url()})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err, errOut.String())
	}
	var sum WSSummary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("output %s: %v", out.String(), err)
	}
	if sum.Connected != 4 || sum.Sent == 0 || sum.Received != sum.Sent || sum.FanoutDelivered != 4 || sum.Errors != 0 ||
		sum.ConnectMS["p50"] <= 0 || sum.RoundTripMS["p99"] <= 0 || len(sum.RTTPerSecond) == 0 {
		t.Errorf("summary %s", out.String())
	}
	page, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	svgs, polylines := checkHTML(t, page)
	// Connect: curve and over time; round trip: curve and over time; fan-out: curve.
	if svgs != 5 || polylines != 7 {
		t.Errorf("report has %d svg and %d polylines, want 5 and 7", svgs, polylines)
	}

	var text bytes.Buffer
	cmd = NewCommand(&text, &errOut)
	cmd.SetArgs([]string{"ws", "--connections", "2", "--message-rate", "0", s.url()})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "connect    2 of 2 connected") || strings.Contains(text.String(), "messages ") {
		t.Errorf("text summary:\n%s", text.String())
	}
}

// checkHTML parses a report strictly and counts its charts and their lines.
func checkHTML(t *testing.T, page []byte) (svgs, polylines int) {
	t.Helper()
	if bytes.Contains(page, []byte("<script")) {
		t.Error("report has a script")
	}
	dec := xml.NewDecoder(bytes.NewReader(page))
	dec.Strict = true
	depth := 0
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
			depth++
			switch tok.Name.Local {
			case "svg":
				svgs++
			case "polyline":
				polylines++
			}
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 {
		t.Errorf("%d unclosed elements", depth)
	}
	return svgs, polylines
}
