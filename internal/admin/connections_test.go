package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/connections"
	"gatehouse.dev/gatehouse/internal/adminapi"
)

// fakeConnections is a ConnectionAdmin holding records in memory. A connection id listed in fail
// answers that error instead.
type fakeConnections struct {
	mu    sync.Mutex
	conns map[string]connections.Record
	fail  map[string]error
	posts []fakePost
	calls int
	// noDeadline counts operations whose context had no deadline.
	noDeadline int
}

type fakePost struct {
	id   string
	data []byte
}

func (f *fakeConnections) List(api string) []connections.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	var out []connections.Record
	for _, r := range f.conns { // map order: the server sorts
		if api == "" || r.API == api {
			out = append(out, r)
		}
	}
	return out
}

// op checks ctx and returns the error for id, if any.
func (f *fakeConnections) op(ctx context.Context, id string) error {
	f.calls++
	if _, ok := ctx.Deadline(); !ok {
		f.noDeadline++
	}
	if err := f.fail[id]; err != nil {
		return err
	}
	if _, ok := f.conns[id]; !ok {
		return connections.ErrGone
	}
	return nil
}

func (f *fakeConnections) Post(ctx context.Context, id string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op(ctx, id); err != nil {
		return err
	}
	// Kept as given, as the gateway's send queue keeps it: the server must pass its own copy.
	f.posts = append(f.posts, fakePost{id, data})
	return nil
}

func (f *fakeConnections) Get(ctx context.Context, id string) (connections.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op(ctx, id); err != nil {
		return connections.Record{}, err
	}
	return f.conns[id], nil
}

func (f *fakeConnections) Delete(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op(ctx, id); err != nil {
		return err
	}
	delete(f.conns, id)
	return nil
}

func (f *fakeConnections) state() (calls, noDeadline int, posts []fakePost) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.noDeadline, slices.Clone(f.posts)
}

// Connection ids of the tests: 24 characters of base64url, the first 8 naming the node.
const (
	connA    = "nodeAAAA0123456789abcdef"
	connB    = "nodeBBBB0123456789abcdef"
	connC    = "nodeAAAAzyxwvutsrqponmlk"
	connGone = "nodeAAAAgonegonegonegone"
	connFull = "nodeAAAAfullfullfullfull"
	connBig  = "nodeAAAAsmalllimitsmall_"
	connSlow = "nodeCCCCslowslowslowslow"
	connBad  = "nodeAAAAbrokenbrokenbrok"
)

var connEpoch = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func newFakeConnections() *fakeConnections {
	rec := func(id, api string, connected time.Duration) connections.Record {
		return connections.Record{ID: id, API: api, Stage: "prod", ConnectedAt: connEpoch.Add(connected),
			LastActiveAt: connEpoch.Add(connected + time.Minute), SourceIP: "192.0.2.7", UserAgent: "wscat/5",
			Authorizer: json.RawMessage(`{"principalId":"u1"}`)}
	}
	return &fakeConnections{
		conns: map[string]connections.Record{
			connA:    rec(connA, "chat", 2*time.Second),
			connB:    rec(connB, "chat", time.Second),
			connC:    rec(connC, "feed", 3*time.Second),
			connFull: rec(connFull, "chat", 4*time.Second),
			connBig:  rec(connBig, "chat", 5*time.Second),
			connSlow: rec(connSlow, "chat", 6*time.Second),
			connBad:  rec(connBad, "chat", 7*time.Second),
		},
		fail: map[string]error{
			connFull: connections.ErrLimitExceeded,
			connBig:  fmt.Errorf("connections: post: %w", connections.ErrPayloadTooLarge),
			connSlow: fmt.Errorf("connections: get %s: %w", connSlow, context.DeadlineExceeded),
			connBad:  errors.New("the bus is down"),
		},
	}
}

// newConnectionHarness serves an admin Server whose connection endpoints use conns, with a real token
// store and audit log.
func newConnectionHarness(t *testing.T, conns ConnectionAdmin) *harness {
	t.Helper()
	ctx := t.Context()
	js := newJetStream(t)
	tokens, err := OpenTokens(ctx, js, "t")
	if err != nil {
		t.Fatal(err)
	}
	token, err := tokens.Create(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	audit, err := OpenAudit(ctx, js, "t")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, token: token, tokens: tokens, audit: audit, logs: &syncBuffer{}}
	s, err := NewServer(Config{
		Tokens:      tokens,
		Health:      func() (int, any) { return 200, map[string]string{"status": "ok"} },
		Logger:      slog.New(slog.NewJSONHandler(h.logs, nil)),
		Audit:       audit,
		Connections: conns,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-served
	})
	h.srv, h.base = s, "http://"+ln.Addr().String()
	return h
}

func TestConnectionsList(t *testing.T) {
	fake := newFakeConnections()
	h := newConnectionHarness(t, fake)

	var got struct{ Connections []adminapi.ConnectionView }
	h.want("GET", "/admin/v1/connections", nil, 200, &got)
	var ids []string
	for _, c := range got.Connections {
		ids = append(ids, c.ID)
	}
	if want := []string{connB, connA, connC, connFull, connBig, connSlow, connBad}; !slices.Equal(ids, want) {
		t.Fatalf("ids %v, want %v (by connectedAt)", ids, want)
	}
	want := adminapi.ConnectionView{ID: connA, API: "chat", Stage: "prod", ConnectedAt: connEpoch.Add(2 * time.Second),
		LastActiveAt: connEpoch.Add(2*time.Second + time.Minute), SourceIP: "192.0.2.7", UserAgent: "wscat/5"}
	if got.Connections[1] != want {
		t.Fatalf("connection %+v, want %+v", got.Connections[1], want)
	}

	h.want("GET", "/admin/v1/connections?api=feed", nil, 200, &got)
	if len(got.Connections) != 1 || got.Connections[0].ID != connC {
		t.Fatalf("api=feed: %+v", got.Connections)
	}

	// No connections: an empty list, not null; the fields are named as documented.
	body := h.want("GET", "/admin/v1/connections?api=none", nil, 200, nil)
	if strings.TrimSpace(string(body)) != `{"connections":[]}` {
		t.Fatalf("api=none: %s", body)
	}
	body = h.want("GET", "/admin/v1/connections?api=feed", nil, 200, nil)
	var raw struct{ Connections []map[string]any }
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw.Connections[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"api", "connectedAt", "id", "lastActiveAt", "sourceIp", "stage", "userAgent"}; !slices.Equal(keys, want) {
		t.Fatalf("fields %v, want %v", keys, want)
	}
}

func TestConnectionsGet(t *testing.T) {
	fake := newFakeConnections()
	h := newConnectionHarness(t, fake)

	var got adminapi.ConnectionView
	h.want("GET", "/admin/v1/connections/"+connC, nil, 200, &got)
	if got.ID != connC || got.API != "feed" || got.Stage != "prod" || !got.ConnectedAt.Equal(connEpoch.Add(3*time.Second)) ||
		got.SourceIP != "192.0.2.7" || got.UserAgent != "wscat/5" {
		t.Fatalf("got %+v", got)
	}
	h.wantError("GET", "/admin/v1/connections/"+connGone, nil, 410, "connection "+connGone+" is gone")
	h.wantError("GET", "/admin/v1/connections/not-an-id", nil, 410, "connection not-an-id is gone")
	h.wantError("GET", "/admin/v1/connections/"+connSlow, nil, 504, "did not answer")
	h.wantError("GET", "/admin/v1/connections/"+connBad, nil, 500, "Internal Server Error")
	if !strings.Contains(h.logs.String(), "the bus is down") {
		t.Fatalf("the failure is not logged: %s", h.logs.String())
	}
	if _, noDeadline, _ := fake.state(); noDeadline != 0 {
		t.Fatalf("%d operations without a deadline", noDeadline)
	}
}

func TestConnectionsPost(t *testing.T) {
	fake := newFakeConnections()
	h := newConnectionHarness(t, fake)

	binary := []byte{0, 1, 2, 0xff, 'h', 'i'}
	h.want("POST", "/admin/v1/connections/"+connA, binary, 204, nil)
	h.want("POST", "/admin/v1/connections/"+connA, []byte(`{"hello":"world"}`), 204, nil)
	h.want("POST", "/admin/v1/connections/"+connA, nil, 204, nil)
	max := bytes.Repeat([]byte("x"), MaxConnectionPost)
	h.want("POST", "/admin/v1/connections/"+connB, max, 204, nil)
	_, _, posts := fake.state()
	if len(posts) != 4 || posts[0].id != connA || !bytes.Equal(posts[0].data, binary) || string(posts[1].data) != `{"hello":"world"}` ||
		len(posts[2].data) != 0 || posts[3].id != connB || !bytes.Equal(posts[3].data, max) {
		t.Fatalf("posts: %d %+v", len(posts), posts[:min(len(posts), 3)])
	}

	// Each message keeps its bytes after the request ends, although Fiber reuses its buffers.
	var sent [][]byte
	for i := range 50 {
		msg := []byte(fmt.Sprintf("message %d %s", i, strings.Repeat(string(rune('a'+i%26)), 100+i)))
		h.want("POST", "/admin/v1/connections/"+connC, msg, 204, nil)
		sent = append(sent, msg)
	}
	_, _, posts = fake.state()
	for i, msg := range sent {
		if p := posts[4+i]; p.id != connC || !bytes.Equal(p.data, msg) {
			t.Fatalf("post %d: %s %q, want %q", i, p.id, p.data, msg)
		}
	}

	// Over 128 KiB: refused before the connection is reached.
	calls, _, _ := fake.state()
	h.wantError("POST", "/admin/v1/connections/"+connA, append(max, 'x'), 413, "over the limit of 131072 bytes")
	if c, _, _ := fake.state(); c != calls {
		t.Fatalf("a post over the limit reached the connection")
	}

	h.wantError("POST", "/admin/v1/connections/"+connBig, []byte("hi"), 413, "over the message limit of connection "+connBig+"'s API")
	h.wantError("POST", "/admin/v1/connections/"+connFull, []byte("hi"), 429, "connection "+connFull+" was not reading its messages")
	h.wantError("POST", "/admin/v1/connections/"+connGone, []byte("hi"), 410, "connection "+connGone+" is gone")
	if _, noDeadline, _ := fake.state(); noDeadline != 0 {
		t.Fatalf("%d operations without a deadline", noDeadline)
	}
}

func TestConnectionsDelete(t *testing.T) {
	fake := newFakeConnections()
	h := newConnectionHarness(t, fake)
	start := time.Now().Add(-time.Second)

	h.want("POST", "/admin/v1/connections/"+connA, []byte("bye"), 204, nil) // posts are not audited
	h.want("DELETE", "/admin/v1/connections/"+connA, nil, 204, nil)
	h.wantError("DELETE", "/admin/v1/connections/"+connA, nil, 410, "connection "+connA+" is gone")
	h.wantError("GET", "/admin/v1/connections/"+connA, nil, 410, "is gone")
	h.wantError("DELETE", "/admin/v1/connections/"+connSlow, nil, 504, "did not answer")

	var got struct{ Entries []adminapi.AuditEntry }
	h.want("GET", "/admin/v1/audit", nil, 200, &got)
	if len(got.Entries) != 1 {
		t.Fatalf("audit entries: %+v", got.Entries)
	}
	if ActionConnectionDelete != "connection.delete" {
		t.Fatalf("ActionConnectionDelete = %q", ActionConnectionDelete)
	}
	if e := got.Entries[0]; e.Action != ActionConnectionDelete || e.Target != connA || e.Token != "admin" ||
		e.Address != "127.0.0.1" || e.Time.Before(start) || e.Time.After(time.Now()) {
		t.Fatalf("audit entry: %+v", e)
	}
}

func TestConnectionsNeedAToken(t *testing.T) {
	fake := newFakeConnections()
	h := newConnectionHarness(t, fake)
	for _, token := range []string{"", "gh.admin.wrong"} {
		for _, r := range []struct{ method, path string }{
			{"GET", "/admin/v1/connections"},
			{"GET", "/admin/v1/connections/" + connA},
			{"POST", "/admin/v1/connections/" + connA},
			{"DELETE", "/admin/v1/connections/" + connA},
		} {
			status, header, body := h.doWith(token, r.method, r.path, []byte("hi"))
			if status != 401 || header.Get("WWW-Authenticate") != `Bearer realm="gatehouse"` || !strings.Contains(string(body), "Unauthorized") {
				t.Fatalf("%s %s with token %q: %d %v %s", r.method, r.path, token, status, header, body)
			}
		}
	}
	if calls, _, _ := fake.state(); calls != 0 {
		t.Fatalf("%d calls reached the connections without a token", calls)
	}
}

func TestConnectionsUnavailable(t *testing.T) {
	h := newConnectionHarness(t, nil)
	for _, method := range []string{"GET", "POST", "DELETE"} {
		h.wantError(method, "/admin/v1/connections/"+connA, nil, 503, "WebSocket connections are not available on this node")
	}
	h.wantError("GET", "/admin/v1/connections", nil, 503, "not available")
}
