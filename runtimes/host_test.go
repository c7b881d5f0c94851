package runtimes_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/runtimes"
)

// fakeHost records host calls and answers from a map.
type fakeHost struct {
	mu    sync.Mutex
	calls []string
	kv    map[string]string
}

func (h *fakeHost) record(s string) {
	h.mu.Lock()
	h.calls = append(h.calls, s)
	h.mu.Unlock()
}

func (h *fakeHost) PostToConnection(ctx context.Context, id string, data []byte) error {
	h.record("post " + id + " " + string(data))
	switch id {
	case "gone":
		return runtimes.ErrHostNotFound
	case "slow":
		return runtimes.ErrHostLimit
	}
	return nil
}

func (h *fakeHost) GetConnection(ctx context.Context, id string) ([]byte, error) {
	h.record("get " + id)
	if id == "gone" {
		return nil, runtimes.ErrHostNotFound
	}
	return []byte(`{"connectedAt":"2026-11-25T10:00:00.000Z","identity":{"sourceIp":"127.0.0.1","userAgent":"t"},"lastActiveAt":"2026-11-25T10:00:01.000Z"}`), nil
}

func (h *fakeHost) DeleteConnection(ctx context.Context, id string) error {
	h.record("delete " + id)
	return nil
}

func (h *fakeHost) Broadcast(ctx context.Context, ids []string, data []byte) ([]string, error) {
	h.record("broadcast " + strings.Join(ids, ",") + " " + string(data))
	var gone []string
	for _, id := range ids {
		if strings.HasPrefix(id, "gone") {
			gone = append(gone, id)
		}
	}
	return gone, nil
}

func (h *fakeHost) KVGet(ctx context.Context, key string) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.kv[key]
	if !ok {
		return nil, runtimes.ErrHostNotFound
	}
	return []byte(v), nil
}

func (h *fakeHost) KVPut(ctx context.Context, key string, value []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if key == "" {
		return runtimes.ErrHostInvalid
	}
	h.kv[key] = string(value)
	return nil
}

func (h *fakeHost) KVCreate(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.kv[key]; ok {
		return runtimes.ErrHostExists
	}
	h.kv[key] = string(value)
	h.calls = append(h.calls, "create "+key+" "+ttl.String())
	return nil
}

func (h *fakeHost) KVDelete(ctx context.Context, key string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.kv, key)
	return nil
}

func (h *fakeHost) HTTP(ctx context.Context, req runtimes.HTTPRequest) (runtimes.HTTPResponse, error) {
	h.record("http " + req.Method + " " + req.URL)
	return runtimes.HTTPResponse{Status: 204}, nil
}

func (h *fakeHost) Publish(ctx context.Context, req runtimes.PublishRequest) error {
	h.record("publish " + req.Subject + " " + string(req.Data))
	return nil
}

func (h *fakeHost) KVList(ctx context.Context, prefix string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var keys []string
	for k := range h.kv {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// TestHostCalls drives every host call of the Go SDK through a real sandbox against a fake host: the
// requests arrive decoded, the answers and errors come back, and only calls with effects mark the
// invocation as having had effects.
func TestHostCalls(t *testing.T) {
	e := newEngine(t)
	m := compile(t, e, testfix.Reactor(t, "internal/testfix/testdata/hostcalls"))
	host := &fakeHost{kv: map[string]string{}}
	inst, err := m.Instantiate(context.Background(), runtimes.InstanceConfig{FunctionName: "hostcalls", Host: host})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	call := func(req string) (map[string]any, bool) {
		t.Helper()
		effects := 0
		out, err := inst.Invoke(context.Background(), runtimes.Meta{RequestID: "r", OnEffect: func() { effects++ }}, []byte(req))
		if err != nil {
			t.Fatalf("%s: %v", req, err)
		}
		if effects > 1 {
			t.Fatalf("%s: OnEffect ran %d times", req, effects)
		}
		var a map[string]any
		if err := json.Unmarshal(out, &a); err != nil {
			t.Fatalf("%s: %s: %v", req, out, err)
		}
		return a, effects == 1
	}
	for _, tc := range []struct {
		req, wantCall string
		wantKey       string
		want          any
		effect        bool
	}{
		{`{"op":"post","id":"c1","data":"hi"}`, "post c1 hi", "", nil, true},
		{`{"op":"post","id":"gone","data":"hi"}`, "post gone hi", "error", "gatehouse: connection gone", true},
		{`{"op":"post","id":"slow","data":"hi"}`, "post slow hi", "error", "gatehouse: limit exceeded", true},
		{`{"op":"get","id":"c1"}`, "get c1", "", nil, false},
		{`{"op":"get","id":"gone"}`, "get gone", "error", "gatehouse: connection gone", false},
		{`{"op":"delete","id":"c1"}`, "delete c1", "", nil, true},
		{`{"op":"broadcast","ids":["a","gone1","b"],"data":"all"}`, "broadcast a,gone1,b all", "broadcast", map[string]any{"sent": 2.0, "gone": []any{"gone1"}}, true},
		{`{"op":"kvget","key":"k"}`, "", "error", "gatehouse: key not found", false},
		{`{"op":"kvput","key":"room.a","data":"1"}`, "", "", nil, true},
		{`{"op":"kvcreate","key":"room.b","data":"2","ttlMs":1500}`, "create room.b 1.5s", "", nil, true},
		{`{"op":"kvcreate","key":"room.b","data":"3"}`, "", "error", "gatehouse: key exists", true},
		{`{"op":"kvget","key":"room.a"}`, "", "value", "1", false},
		{`{"op":"kvlist","prefix":"room."}`, "", "keys", []any{"room.a", "room.b"}, false},
		{`{"op":"kvput","key":"","data":"1"}`, "", "error", "gatehouse: invalid request", true},
		{`{"op":"kvdelete","key":"room.a"}`, "", "", nil, true},
	} {
		host.mu.Lock()
		host.calls = nil
		host.mu.Unlock()
		a, effect := call(tc.req)
		if tc.wantKey != "" {
			got, _ := json.Marshal(a[tc.wantKey])
			want, _ := json.Marshal(tc.want)
			if string(got) != string(want) {
				t.Errorf("%s: %s = %s, want %s", tc.req, tc.wantKey, got, want)
			}
		} else if a["error"] != nil {
			t.Errorf("%s: error %v", tc.req, a["error"])
		}
		if effect != tc.effect {
			t.Errorf("%s: effect %v, want %v", tc.req, effect, tc.effect)
		}
		host.mu.Lock()
		calls := host.calls
		host.mu.Unlock()
		if tc.wantCall != "" && (len(calls) != 1 || calls[0] != tc.wantCall) {
			t.Errorf("%s: host saw %q, want %q", tc.req, calls, tc.wantCall)
		}
	}
	if c, _ := call(`{"op":"get","id":"c1"}`); c["connection"].(map[string]any)["identity"].(map[string]any)["sourceIp"] != "127.0.0.1" {
		t.Errorf("connection: %v", c["connection"])
	}

	// Without a host, host calls fail as unavailable, and the function goes on.
	bare, err := m.Instantiate(context.Background(), runtimes.InstanceConfig{FunctionName: "hostcalls"})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close(context.Background())
	out, err := bare.Invoke(context.Background(), runtimes.Meta{RequestID: "r"}, []byte(`{"op":"post","id":"c1","data":"x"}`))
	if err != nil || !strings.Contains(string(out), "host calls are not available") {
		t.Fatalf("without a host: %s, %v", out, err)
	}
}
