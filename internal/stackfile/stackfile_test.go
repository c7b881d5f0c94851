package stackfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/spec"
)

// stackDir makes a directory holding the sources the test files refer to: Go source directories
// hello/ and echo/, an empty module mod.wasm and a file that is neither, notes.txt.
func stackDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"hello", "echo"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"mod.wasm", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// copyToDir writes testdata/name into dir and returns its path.
func copyToDir(t *testing.T, name, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// noAuth is the authorization of a route without authorization: key.
var noAuth = spec.Authorization{Type: spec.AuthNone}

func TestLoadExample(t *testing.T) {
	dir := stackDir(t)
	path := copyToDir(t, "example.yaml", dir)
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	clearPositions(got)
	want := &spec.Stack{
		Version: 1,
		Name:    "samples",
		Dir:     dir,
		File:    path,
		Functions: map[string]spec.Function{
			"hello": {
				Name:   "hello",
				Source: filepath.Join(dir, "hello"),
				Kind:   spec.SourceGo,
				FunctionSettings: spec.FunctionSettings{
					MemoryMB:    128,
					Timeout:     spec.Duration(3 * time.Second),
					IdleTimeout: spec.Duration(spec.DefaultIdleTimeout),
					Environment: map[string]string{},
				},
			},
			"echo": {
				Name:   "echo",
				Source: filepath.Join(dir, "echo"),
				Kind:   spec.SourceGo,
				FunctionSettings: spec.FunctionSettings{
					MemoryMB:       256,
					Timeout:        spec.Duration(5 * time.Second),
					Environment:    map[string]string{"GREETING": "hi"},
					MaxConcurrency: 10,
					MinWarm:        1,
					IdleTimeout:    spec.Duration(spec.DefaultIdleTimeout),
				},
			},
		},
		APIs: map[string]spec.API{
			"web": {
				Name:   "web",
				Type:   "http",
				Mount:  "/",
				Host:   "",
				Stages: map[string]spec.Stage{"$default": {Name: "$default", Variables: map[string]string{}}},
				Routes: []spec.Route{
					{Key: "GET /hello", Line: 17, Authorization: noAuth, Integration: spec.Integration{
						Type: "function", Target: "hello", PayloadFormatVersion: "2.0", Timeout: spec.Duration(30 * time.Second)}},
					{Key: "ANY /echo/{proxy+}", Line: 19, Authorization: noAuth, Integration: spec.Integration{
						Type: "function", Target: "echo", PayloadFormatVersion: "2.0", Timeout: spec.Duration(10 * time.Second)}},
				},
			},
		},
		IAM: spec.IAM{Region: "us-east-1", AccountID: spec.DefaultAccountID},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate of a loaded stack: %v", err)
	}
}

func TestLoadRelativePath(t *testing.T) {
	dir := stackDir(t)
	copyToDir(t, "example.yaml", dir)
	t.Chdir(dir)
	s, err := Load("gatehouse.yaml")
	if err != nil {
		t.Fatal(err)
	}
	clearPositions(s)
	if s.File != "gatehouse.yaml" || s.Dir != dir {
		t.Errorf("File, Dir = %q, %q; want %q, %q", s.File, s.Dir, "gatehouse.yaml", dir)
	}
	if want := filepath.Join(dir, "hello"); s.Functions["hello"].Source != want {
		t.Errorf("hello source = %q, want %q", s.Functions["hello"].Source, want)
	}
}

func TestLoadFull(t *testing.T) {
	dir := stackDir(t)
	path := copyToDir(t, "full.yaml", dir)
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	clearPositions(s)
	env := map[string]string{"PORT": "08080", "DEBUG": "true", "EMPTY": ""}
	wantFuncs := map[string]spec.Function{
		"base": {Name: "base", Source: filepath.Join(dir, "hello"), Kind: spec.SourceGo, FunctionSettings: spec.FunctionSettings{MemoryMB: 512,
			Timeout: spec.Duration(500 * time.Millisecond), Environment: env, IdleTimeout: spec.Duration(spec.DefaultIdleTimeout)}},
		"module": {Name: "module", Source: filepath.Join(dir, "mod.wasm"), Kind: spec.SourceWasm, FunctionSettings: spec.FunctionSettings{MemoryMB: 512,
			Timeout: spec.Duration(500 * time.Millisecond), Environment: env, MaxConcurrency: 4, MinWarm: 4, IdleTimeout: spec.Duration(spec.DefaultIdleTimeout), SnapStart: true}},
	}
	if !reflect.DeepEqual(s.Functions, wantFuncs) {
		t.Errorf("functions:\n got %+v\nwant %+v", s.Functions, wantFuncs)
	}
	fn := func(target string, timeout time.Duration) spec.Integration {
		return spec.Integration{Type: "function", Target: target, PayloadFormatVersion: "2.0", Timeout: spec.Duration(timeout)}
	}
	wantAPIs := map[string]spec.API{
		"shop": {Name: "shop", Type: "http", Mount: "/shop/v1", Host: "api.example.com",
			Stages: map[string]spec.Stage{
				"prod":     {Name: "prod", Variables: map[string]string{"backend": "https://b.example/x?y=1", "lambdaAlias": "live"}},
				"$default": {Name: "$default", Variables: map[string]string{}},
			},
			Routes: []spec.Route{
				{Key: "$default", Line: 29, Authorization: noAuth, Integration: fn("base", 30*time.Second)},
				{Key: "POST /orders", Line: 31, Authorization: noAuth, Integration: fn("module", 10*time.Second)},
				{Key: "GET /orders/{id}", Line: 37, Authorization: noAuth, Integration: fn("base", 50*time.Millisecond)},
			}},
		"admin": {Name: "admin", Type: "http", Mount: "/admin",
			Stages: map[string]spec.Stage{"$default": {Name: "$default", Variables: map[string]string{}}},
			Routes: []spec.Route{{Key: "ANY /{proxy+}", Line: 42, Authorization: noAuth, Integration: fn("module", 30*time.Second)}}},
	}
	if !reflect.DeepEqual(s.APIs, wantAPIs) {
		t.Errorf("apis:\n got %+v\nwant %+v", s.APIs, wantAPIs)
	}
	if s.Name != "shop-2" {
		t.Errorf("name = %q", s.Name)
	}
}

// wsFull is a stack with every WebSocket and iam key.
const wsFull = `version: 1
functions:
  chat: {source: hello}
iam:
  region: eu-west-1
  accountId: "123456789012"
  accessKeys:
    - id: AKIAIOSFODNN7EXAMPLE
      secret: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
    - id: AKIAI44QH8DHBEXAMPLE
      secretFromEnv: GATEHOUSE_TEST_CHAT_SECRET
apis:
  chat:
    type: websocket
    mount: /chat
    host: Chat.Example.com
    stages:
      prod: {variables: {room: main}}
    routeSelectionExpression: $request.body.meta.action_2
    routes:
      $connect: {function: chat}
      $disconnect: {function: chat}
      $default: {function: chat, routeResponse: true}
      sendmessage:
        function: chat:prod
        timeout: 10s
        routeResponse: true
      join room:
        integration: {target: "chat:$LATEST", timeout: 50ms}
    limits:
      maxMessageBytes: 65536
      maxFrameBytes: 16384
      idleTimeout: 30s
      maxConnectionDuration: 1h
      sendQueue: 16
  web:
    type: http
    routes: {GET /x: {function: chat}}
`

func TestParseWebSocketAndIAM(t *testing.T) {
	t.Setenv("GATEHOUSE_TEST_CHAT_SECRET", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY")
	dir := stackDir(t)
	s, err := Parse("gatehouse.yaml", []byte(wsFull), dir)
	if err != nil {
		t.Fatal(err)
	}
	clearPositions(s)
	wantIAM := spec.IAM{Region: "eu-west-1", AccountID: "123456789012", AccessKeys: []spec.AccessKey{
		{ID: "AKIAIOSFODNN7EXAMPLE", Secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		{ID: "AKIAI44QH8DHBEXAMPLE", Secret: "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"},
	}}
	if !reflect.DeepEqual(s.IAM, wantIAM) {
		t.Errorf("iam:\n got %#v\nwant %#v", s.IAM, wantIAM)
	}
	ws := func(target string, timeout time.Duration) spec.Integration {
		return spec.Integration{Type: "function", Target: target, Timeout: spec.Duration(timeout)}
	}
	wantChat := spec.API{Name: "chat", Type: "websocket", Mount: "/chat", Host: "chat.example.com",
		Stages: map[string]spec.Stage{"prod": {Name: "prod", Variables: map[string]string{"room": "main"}}},
		Routes: []spec.Route{
			{Key: "$connect", Line: 21, Authorization: noAuth, Integration: ws("chat", 29*time.Second)},
			{Key: "$disconnect", Line: 22, Authorization: noAuth, Integration: ws("chat", 29*time.Second)},
			{Key: "$default", Line: 23, Authorization: noAuth, Integration: ws("chat", 29*time.Second), RouteResponse: true},
			{Key: "sendmessage", Line: 24, Authorization: noAuth, Integration: ws("chat:prod", 10*time.Second), RouteResponse: true},
			{Key: "join room", Line: 28, Authorization: noAuth, Integration: ws("chat:$LATEST", 50*time.Millisecond)},
		},
		RouteSelectionExpression: "$request.body.meta.action_2",
		WebSocket: &spec.WebSocketLimits{MaxMessageBytes: 65536, MaxFrameBytes: 16384, IdleTimeout: spec.Duration(30 * time.Second),
			MaxConnectionDuration: spec.Duration(time.Hour), SendQueue: 16},
	}
	if got := s.APIs["chat"]; !reflect.DeepEqual(got, wantChat) {
		t.Errorf("chat:\n got %+v\nwant %+v", got, wantChat)
		if got.WebSocket != nil {
			t.Errorf("limits: %+v", *got.WebSocket)
		}
	}
	web := s.APIs["web"]
	if web.RouteSelectionExpression != "" || web.WebSocket != nil || web.Routes[0].RouteResponse ||
		web.Routes[0].Integration.PayloadFormatVersion != spec.PayloadFormat2 || web.Routes[0].Integration.Timeout.D() != spec.DefaultIntegrationTimeout {
		t.Errorf("web: %+v", web)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// Printing a stack never shows a secret.
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, s); strings.Contains(out, "EXAMPLEKEY") {
			t.Errorf("%s shows a secret: %s", format, out)
		}
	}
}

// TestParseValues checks decoded values, defaults and the forms a value may take.
func TestParseValues(t *testing.T) {
	const head = "version: 1\nfunctions:\n  hello: {source: hello}\n"
	const api = "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: hello}\n"
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, s *spec.Stack, dir string)
	}{
		{
			name: "defaults",
			yaml: head + api,
			check: func(t *testing.T, s *spec.Stack, dir string) {
				want := &spec.Stack{Version: 1, Name: "default", Dir: dir, File: "gatehouse.yaml",
					Functions: map[string]spec.Function{"hello": {Name: "hello", Source: filepath.Join(dir, "hello"),
						Kind: spec.SourceGo, FunctionSettings: spec.DefaultFunctionSettings()}},
					APIs: map[string]spec.API{"web": {Name: "web", Type: "http", Mount: "/",
						Stages: map[string]spec.Stage{"$default": {Name: "$default", Variables: map[string]string{}}},
						Routes: []spec.Route{{Key: "GET /x", Line: 8, Authorization: noAuth, Integration: spec.Integration{Type: "function", Target: "hello",
							PayloadFormatVersion: "2.0", Timeout: spec.Duration(spec.DefaultIntegrationTimeout)}}}}},
					IAM: spec.IAM{Region: spec.DefaultRegion, AccountID: spec.DefaultAccountID},
				}
				if !reflect.DeepEqual(s, want) {
					t.Errorf("\n got %+v\nwant %+v", s, want)
				}
			},
		},
		{
			name: "websocket defaults",
			yaml: head + "apis:\n  chat:\n    type: websocket\n    routes:\n      $connect: {function: hello}\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				want := spec.API{Name: "chat", Type: "websocket", Mount: "/",
					Stages:                   map[string]spec.Stage{"$default": {Name: "$default", Variables: map[string]string{}}},
					Routes:                   []spec.Route{{Key: "$connect", Line: 8, Authorization: noAuth, Integration: spec.Integration{Type: "function", Target: "hello", Timeout: spec.Duration(spec.DefaultWSIntegrationTimeout)}}},
					RouteSelectionExpression: spec.DefaultRouteSelectionExpression,
					WebSocket: &spec.WebSocketLimits{MaxMessageBytes: spec.DefaultMaxMessageBytes, MaxFrameBytes: spec.DefaultMaxFrameBytes,
						IdleTimeout: spec.Duration(spec.DefaultWSIdleTimeout), MaxConnectionDuration: spec.Duration(spec.DefaultMaxConnectionDuration), SendQueue: spec.DefaultSendQueue},
				}
				if got := s.APIs["chat"]; !reflect.DeepEqual(got, want) {
					t.Errorf("\n got %+v\nwant %+v", got, want)
				}
				if spec.DefaultMaxMessageBytes != 131072 || spec.DefaultMaxFrameBytes != 32768 || spec.DefaultWSIntegrationTimeout != 29*time.Second ||
					spec.DefaultRouteSelectionExpression != "$request.body.action" || spec.RouteSelectionAlwaysDefault != `\$default` {
					t.Error("a default differs from API Gateway's")
				}
			},
		},
		{
			name: "websocket limits accepted",
			yaml: head + "apis:\n  chat:\n    type: websocket\n    routeSelectionExpression: \\$default\n    limits: {maxMessageBytes: 16777216, maxFrameBytes: 16777216, idleTimeout: 2h, maxConnectionDuration: 24h, sendQueue: 65536}\n    routes:\n      $default: {function: hello, timeout: 29s}\n      " + strings.Repeat("é", 128) + ": {function: hello, timeout: 50ms, routeResponse: false}\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				a := s.APIs["chat"]
				want := spec.WebSocketLimits{MaxMessageBytes: spec.MaxMaxMessageBytes, MaxFrameBytes: spec.MaxMaxMessageBytes, IdleTimeout: spec.Duration(spec.MaxWSIdleTimeout),
					MaxConnectionDuration: spec.Duration(spec.MaxMaxConnectionDuration), SendQueue: spec.MaxSendQueue}
				if *a.WebSocket != want || a.RouteSelectionExpression != spec.RouteSelectionAlwaysDefault || a.Routes[0].Integration.Timeout.D() != spec.MaxWSIntegrationTimeout {
					t.Errorf("chat = %+v, limits %+v", a, *a.WebSocket)
				}
			},
		},
		{
			name: "websocket frame size follows a small message size",
			yaml: head + "apis:\n  chat:\n    type: websocket\n    limits: {maxMessageBytes: 4096}\n    routeSelectionExpression: '$request.body.type'\n    routes:\n      $default: {function: hello}\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				a := s.APIs["chat"]
				if a.WebSocket.MaxMessageBytes != 4096 || a.WebSocket.MaxFrameBytes != 4096 || a.WebSocket.SendQueue != spec.DefaultSendQueue {
					t.Errorf("limits = %+v", *a.WebSocket)
				}
				if a.RouteSelectionExpression != "$request.body.type" {
					t.Errorf("routeSelectionExpression = %q", a.RouteSelectionExpression)
				}
			},
		},
		{
			name: "websocket limits and routes through aliases",
			yaml: head + "apis:\n  a:\n    type: websocket\n    mount: /a\n    limits: &l {sendQueue: 8}\n    routes: &r\n      $default: {function: hello, routeResponse: true}\n  b:\n    type: websocket\n    mount: /b\n    limits: {<<: *l, idleTimeout: 1s}\n    routes: *r\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				b := s.APIs["b"]
				if b.WebSocket.SendQueue != 8 || b.WebSocket.IdleTimeout.D() != time.Second || !b.Routes[0].RouteResponse {
					t.Errorf("b = %+v, limits %+v", b, *b.WebSocket)
				}
			},
		},
		{
			name: "iam defaults",
			yaml: head + api + "iam:\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				if !reflect.DeepEqual(s.IAM, spec.IAM{Region: spec.DefaultRegion, AccountID: spec.DefaultAccountID}) {
					t.Errorf("iam = %#v", s.IAM)
				}
			},
		},
		{
			name: "iam keys",
			yaml: head + api + "iam:\n  region: us-gov-west-1\n  accessKeys:\n    - {id: " + strings.Repeat("A", 128) + ", secret: !!str 1234567890123456}\n    - id: AKIAIOSFODNN7EXAMPLE\n      secret: '" + strings.Repeat("~", 128) + "'\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				want := spec.IAM{Region: "us-gov-west-1", AccountID: spec.DefaultAccountID, AccessKeys: []spec.AccessKey{
					{ID: strings.Repeat("A", 128), Secret: "1234567890123456"},
					{ID: "AKIAIOSFODNN7EXAMPLE", Secret: strings.Repeat("~", 128)},
				}}
				if !reflect.DeepEqual(s.IAM, want) {
					t.Errorf("iam = %#v", s.IAM)
				}
			},
		},
		{
			name: "iam empty key list",
			yaml: head + api + "iam:\n  accessKeys: []\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				if s.IAM.AccessKeys != nil || s.IAM.Region != spec.DefaultRegion {
					t.Errorf("iam = %#v", s.IAM)
				}
			},
		},
		{
			name: "wasm source",
			yaml: "version: 1\nfunctions:\n  hello: {source: ./sub/../mod.wasm}\n" + api,
			check: func(t *testing.T, s *spec.Stack, dir string) {
				f := s.Functions["hello"]
				if f.Kind != spec.SourceWasm || f.Source != filepath.Join(dir, "mod.wasm") {
					t.Errorf("Kind, Source = %v, %q", f.Kind, f.Source)
				}
			},
		},
		{
			name: "absolute source",
			yaml: "version: 1\nfunctions:\n  hello: {source: DIR/echo/}\n" + api,
			check: func(t *testing.T, s *spec.Stack, dir string) {
				if f := s.Functions["hello"]; f.Source != filepath.Join(dir, "echo") {
					t.Errorf("Source = %q", f.Source)
				}
			},
		},
		{
			name: "limits accepted",
			yaml: "version: 1\nfunctions:\n  hello: {source: hello, memory: 10240, timeout: 900s, maxConcurrency: 10000, minWarm: 1000}\n  h2: {source: hello, memory: 128, timeout: 1ms}\n" + api,
			check: func(t *testing.T, s *spec.Stack, dir string) {
				if f := s.Functions["hello"]; f.MemoryMB != 10240 || f.Timeout.D() != 900*time.Second || f.MaxConcurrency != 10000 || f.MinWarm != 1000 {
					t.Errorf("hello = %+v", f)
				}
				if f := s.Functions["h2"]; f.MemoryMB != 128 || f.Timeout.D() != time.Millisecond {
					t.Errorf("h2 = %+v", f)
				}
			},
		},
		{
			name: "environment values keep their text",
			yaml: "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment:\n      A: 0x1F\n      B: 1.50\n      C: false\n      D: |\n        two\n        lines\n      _e: \"\"\n" + api,
			check: func(t *testing.T, s *spec.Stack, dir string) {
				want := map[string]string{"A": "0x1F", "B": "1.50", "C": "false", "D": "two\nlines\n", "_e": ""}
				if got := s.Functions["hello"].Environment; !reflect.DeepEqual(got, want) {
					t.Errorf("environment = %q, want %q", got, want)
				}
			},
		},
		{
			name: "environment at the size limit",
			yaml: "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment: {A: " + strings.Repeat("x", spec.MaxEnvironmentSize-1) + "}\n" + api,
			check: func(t *testing.T, s *spec.Stack, dir string) {
				if n := len(s.Functions["hello"].Environment["A"]); n != spec.MaxEnvironmentSize-1 {
					t.Errorf("len = %d", n)
				}
			},
		},
		{
			name: "integration long form",
			yaml: head + "apis:\n  web:\n    type: http\n    routes:\n      $default:\n        integration: {type: function, target: hello, payloadFormatVersion: \"2.0\", timeout: 50ms}\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				want := spec.Routes{{Key: "$default", Line: 8, Authorization: noAuth, Integration: spec.Integration{Type: "function", Target: "hello", PayloadFormatVersion: "2.0", Timeout: spec.Duration(50 * time.Millisecond)}}}
				if got := s.APIs["web"].Routes; !reflect.DeepEqual(got, want) {
					t.Errorf("routes = %+v", got)
				}
			},
		},
		{
			name: "routes keep file order",
			yaml: head + "apis:\n  web:\n    type: http\n    routes:\n      PUT /z: {function: hello}\n      GET /a: {function: hello}\n      $default: {function: hello}\n      DELETE /m: {function: hello}\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				var keys []string
				var lines []int
				for _, r := range s.APIs["web"].Routes {
					keys = append(keys, r.Key)
					lines = append(lines, r.Line)
				}
				if want := []string{"PUT /z", "GET /a", "$default", "DELETE /m"}; !reflect.DeepEqual(keys, want) {
					t.Errorf("keys = %q, want %q", keys, want)
				}
				if want := []int{8, 9, 10, 11}; !reflect.DeepEqual(lines, want) {
					t.Errorf("lines = %v, want %v", lines, want)
				}
			},
		},
		{
			name: "stages replace the default stage",
			yaml: head + "apis:\n  web:\n    type: http\n    stages:\n      dev:\n      prod: {variables: {v: \"1\", w: 2}}\n    routes:\n      GET /x: {function: hello}\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				want := map[string]spec.Stage{
					"dev":  {Name: "dev", Variables: map[string]string{}},
					"prod": {Name: "prod", Variables: map[string]string{"v": "1", "w": "2"}},
				}
				if got := s.APIs["web"].Stages; !reflect.DeepEqual(got, want) {
					t.Errorf("stages = %+v", got)
				}
			},
		},
		{
			name: "empty stages mean the default stage",
			yaml: head + "apis:\n  web:\n    type: http\n    stages: {}\n    routes:\n      GET /x: {function: hello}\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				if _, ok := s.APIs["web"].Stages["$default"]; !ok || len(s.APIs["web"].Stages) != 1 {
					t.Errorf("stages = %+v", s.APIs["web"].Stages)
				}
			},
		},
		{
			name: "same mount on different hosts",
			yaml: head + "apis:\n  a:\n    type: http\n    routes: {GET /x: {function: hello}}\n  b:\n    type: http\n    host: b.example\n    routes: {GET /x: {function: hello}}\n  c:\n    type: http\n    mount: /c\n    routes: {GET /x: {function: hello}}\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				if len(s.APIs) != 3 || s.APIs["b"].Host != "b.example" || s.APIs["c"].Mount != "/c" {
					t.Errorf("apis = %+v", s.APIs)
				}
			},
		},
		{
			name: "stage name like a route segment",
			yaml: head + "apis:\n  web:\n    type: http\n    stages: {hello: {}, $default: {}}\n    routes:\n      GET /hello: {function: hello}\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				if len(s.APIs["web"].Stages) != 2 {
					t.Errorf("stages = %+v", s.APIs["web"].Stages)
				}
			},
		},
		{
			name: "anchors, aliases and merge lists",
			yaml: "version: 1\nfunctions:\n  a: &a {source: hello, memory: 256}\n  b: &b {source: echo, timeout: 1s, memory: 512}\n  c:\n    <<: [*a, *b]\n    minWarm: 2\napis:\n  web:\n    type: http\n    routes: &r\n      GET /x: {function: a}\n  web2:\n    type: http\n    mount: /two\n    routes: *r\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				c := s.Functions["c"]
				if c.MemoryMB != 256 || c.Timeout.D() != time.Second || c.MinWarm != 2 || c.Source != filepath.Join(dir, "hello") {
					t.Errorf("c = %+v", c)
				}
				if r := s.APIs["web2"].Routes; len(r) != 1 || r[0].Key != "GET /x" || r[0].Line != 12 {
					t.Errorf("web2 routes = %+v", r)
				}
			},
		},
		{
			name: "tagged string",
			yaml: "version: 1\nname: !!str 123\nfunctions:\n  hello: {source: hello}\n" + api,
			check: func(t *testing.T, s *spec.Stack, dir string) {
				if s.Name != "123" {
					t.Errorf("name = %q", s.Name)
				}
			},
		},
		{
			name: "byte order mark and directive",
			yaml: "\xef\xbb\xbf%YAML 1.2\n---\nversion: 1\nname: bom\nfunctions:\n  hello: {source: hello}\n" + api,
			check: func(t *testing.T, s *spec.Stack, dir string) {
				if s.Name != "bom" {
					t.Errorf("name = %q", s.Name)
				}
			},
		},
		{
			name: "null sections",
			yaml: "version: 1\nname: x\nfunctions:\n  hello:\n    source: hello\n    environment:\n" + api,
			check: func(t *testing.T, s *spec.Stack, dir string) {
				if env := s.Functions["hello"].Environment; env == nil || len(env) != 0 {
					t.Errorf("environment = %#v", env)
				}
			},
		},
		{
			name: "empty trailing document",
			yaml: head + api + "---\n# nothing\n",
			check: func(t *testing.T, s *spec.Stack, dir string) {
				if len(s.APIs) != 1 {
					t.Errorf("apis = %+v", s.APIs)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := stackDir(t)
			data := strings.ReplaceAll(tt.yaml, "DIR", dir)
			s, err := Parse("gatehouse.yaml", []byte(data), dir)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			clearPositions(s)
			tt.check(t, s, dir)
			if err := s.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// TestParseErrors checks that each problem is one error that names the place and the key path.
// want is a prefix of the message.
func TestParseErrors(t *testing.T) {
	const fn = "functions:\n  hello: {source: hello}\n"                                         // lines 2-3
	const api = "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: hello}\n" // lines 4-8
	const ok = "version: 1\n" + fn + api
	const ws = "version: 1\n" + fn + "apis:\n  chat:\n    type: websocket\n    routes:\n" // lines 4-7
	const wsKeys = "a websocket API's route keys are $connect, $disconnect, $default and custom keys, which are matched against the value the routeSelectionExpression picks from each message, such as sendmessage"
	const wsRSEWant = `want $request.body.NAME, where NAME is a field of the JSON message (letters, digits and _; nested fields joined by dots, as in $request.body.meta.action), or \$default to send every message to the $default route; composite expressions such as ${request.body.a}/${request.body.b} are not supported`
	wsRSE := func(expr string) string {
		return ws[:len(ws)-len("    routes:\n")] + "    routeSelectionExpression: " + expr + "\n    routes: {$default: {function: hello}}\n"
	}
	wsLimits := func(limits string) string {
		return ws[:len(ws)-len("    routes:\n")] + "    limits: " + limits + "\n    routes: {$default: {function: hello}}\n"
	}
	t.Setenv("GATEHOUSE_TEST_EMPTY_SECRET", "")
	t.Setenv("GATEHOUSE_TEST_SHORT_SECRET", "Sekr3t")
	tests := []struct {
		name string
		yaml string
		want string
	}{
		// The file and YAML syntax.
		{"empty file", "", `gatehouse.yaml:1:1: the stack file is empty; a stack file starts with "version: 1"`},
		{"comments only", "# nothing\n", `gatehouse.yaml:1:1: the stack file is empty`},
		{"not a mapping", "- a\n- b\n", `gatehouse.yaml:1:1: a stack file is a mapping of version, name, functions, apis, iam, usagePlans and domains; got a list`},
		{"syntax error", "version: 1\nfunctions: [a\n", `gatehouse.yaml:2:12: invalid YAML: `},
		{"bad indentation", "version: 1\nfunctions:\n  hello:\n    source: x\n   memory: 3\n", `gatehouse.yaml:5:`},
		{"duplicate key", "version: 1\nversion: 1\n", `gatehouse.yaml:2:1: invalid YAML: mapping key "version" already defined at line 1, column 1`},
		{"duplicate function", "version: 1\nfunctions:\n  a: {source: hello}\n  a: {source: echo}\n", `gatehouse.yaml:4:3: invalid YAML: mapping key "a" already defined at line 3, column 3`},
		{"two documents", ok + "---\nversion: 1\n", `gatehouse.yaml:10:1: a stack file holds one YAML document`},
		{"undefined alias", "version: 1\nname: *nope\n", `gatehouse.yaml:2:7: name: alias *nope does not refer to an anchor (&nope) defined before it`},
		{"alias before anchor", "version: 1\nname: *n\nfunctions: &n {}\n", `gatehouse.yaml:2:7: name: alias *n does not refer to an anchor`},
		{"unsupported tag", "version: 1\nname: !Ref x\n", `gatehouse.yaml:2:7: name: the YAML tag !Ref is not supported (only !!str)`},
		{"bad merge", "version: 1\nfunctions:\n  a:\n    <<: 3\n", `gatehouse.yaml:4:5: functions.a: << (merge key) wants a mapping or a list of mappings`},
		{"flow nested too deep", "version: 1\nname: " + strings.Repeat("[", 200000) + strings.Repeat("]", 200000) + "\n", `gatehouse.yaml:2:107: [ and { nested more than 100 deep`},
		{"too many keys in one mapping", "version: 1\nfunctions:\n" + strings.Repeat("  # c\n\n", 10) + manyFunctions(5001), `gatehouse.yaml:5023:3: more than 5000 keys in one mapping`},
		{"aliases expand too much", "version: 1\nfunctions: {f: {source: hello}}\napis:\n  a0:\n    type: http\n    mount: /a0\n    routes: &r\n" + manyRoutes(300) + manyAPIs(1000), `gatehouse.yaml:637:44: apis.a330.routes: the file expands (through aliases) to more than 200000 keys`},
		{"mapping as key", "version: 1\nfunctions:\n  ? {a: 1}\n  : x\n", `gatehouse.yaml:4:3: invalid YAML: `},
		{"not UTF-8", "version: 1\nname: caf\xe9\n", `gatehouse.yaml:2:10: the stack file is not UTF-8 text`},
		{"NUL", "version: 1\nname: a\x00\n", `gatehouse.yaml:2:8: the stack file contains a NUL byte`},

		// version and name.
		{"version missing", fn + api, `gatehouse.yaml:1:1: version: required; add "version: 1" at the top of the file`},
		{"version 2", "name: x\nversion: 2\nnewKey: 1\n", `gatehouse.yaml:2:10: version: version 2 is not supported; this Gatehouse reads version 1`},
		{"version string", "version: \"1\"\n", `gatehouse.yaml:1:10: version: want a whole number, got the string "1"`},
		{"version float", "version: 1.0\n", `gatehouse.yaml:1:10: version: want a whole number, got the number 1.0`},
		{"unknown top-level key", "version: 1\nfunction:\n  a: {}\n", `gatehouse.yaml:2:1: function: unknown key (did you mean "functions"?); known keys here: version, name, functions, apis, iam`},
		{"name upper case", "version: 1\nname: Shop\n" + fn + api, `gatehouse.yaml:2:7: name: "Shop" is not a valid stack name`},
		{"name too long", "version: 1\nname: " + strings.Repeat("a", 64) + "\n" + fn + api, `gatehouse.yaml:2:7: name: "aaaa`},
		{"name number", "version: 1\nname: 123\n", `gatehouse.yaml:2:7: name: want a string, got the number 123 (quote it: "123")`},

		// functions.
		{"functions not a mapping", "version: 1\nfunctions: [a]\n", `gatehouse.yaml:2:12: functions: want a mapping, got a list`},
		{"source missing", "version: 1\nfunctions:\n  hello:\n    memory: 256\n", `gatehouse.yaml:3:3: functions.hello.source: required: the function's Go source directory or .wasm file`},
		{"memory null", "version: 1\nfunctions:\n  hello:\n    source: hello\n    memory:\n", `gatehouse.yaml:5:5: functions.hello.memory: want a whole number of MB, got nothing (null)`},
		{"source missing (null function)", "version: 1\nfunctions:\n  hello:\n", `gatehouse.yaml:3:3: functions.hello.source: required`},
		{"source does not exist", "version: 1\nfunctions:\n  hello:\n    source: ./nope\n", `gatehouse.yaml:4:13: functions.hello.source: "./nope" does not exist (looked for "DIR/nope")`},
		{"source neither", "version: 1\nfunctions:\n  hello: {source: notes.txt}\n", `gatehouse.yaml:3:19: functions.hello.source: "notes.txt" is neither a directory (Go source, or a process runtime's package), a .wasm file nor a .zip package`},
		{"source empty", "version: 1\nfunctions:\n  hello: {source: \"\"}\n", `gatehouse.yaml:3:19: functions.hello.source: empty`},
		{"unknown function key", "version: 1\nfunctions:\n  hello:\n    source: hello\n    tmeout: 3s\n", `gatehouse.yaml:5:5: functions.hello.tmeout: unknown key (did you mean "timeout"?); known keys here: source, runtime, handler, isolation, memory, timeout, environment, maxConcurrency, minWarm`},
		{"key in wrong case", "version: 1\nfunctions:\n  hello:\n    source: hello\n    MaxConcurrency: 3\n", `gatehouse.yaml:5:5: functions.hello.MaxConcurrency: unknown key (did you mean "maxConcurrency"?)`},
		{"bad function name", "version: 1\nfunctions:\n  hello world: {source: hello}\n" + api, `gatehouse.yaml:3:3: functions["hello world"]: "hello world" is not a valid function name`},
		{"memory string", "version: 1\nfunctions:\n  hello:\n    source: hello\n    memory: 256MB\n", `gatehouse.yaml:5:13: functions.hello.memory: want a whole number of MB, got the string "256MB"`},
		{"memory fraction", "version: 1\nfunctions:\n  hello:\n    source: hello\n    memory: 128.5\n", `gatehouse.yaml:5:13: functions.hello.memory: want a whole number of MB, got the number 128.5`},
		{"memory too small", "version: 1\nfunctions:\n  hello:\n    source: hello\n    memory: 64\n" + api, `gatehouse.yaml:5:13: functions.hello.memory: 64 is out of range: want 128 to 10240 (MB)`},
		{"memory too large", "version: 1\nfunctions:\n  hello:\n    source: hello\n    memory: 10241\n" + api, `gatehouse.yaml:5:13: functions.hello.memory: 10241 is out of range`},
		{"memory huge", "version: 1\nfunctions:\n  hello:\n    source: hello\n    memory: 99999999999999999999\n", `gatehouse.yaml:5:13: functions.hello.memory: 99999999999999999999 is too large`},
		{"timeout bad", "version: 1\nfunctions:\n  hello:\n    source: hello\n    timeout: 3x\n", `gatehouse.yaml:5:14: functions.hello.timeout: "3x" is not a duration (want e.g. 3s or 500ms)`},
		{"idleTimeout too short", "version: 1\nfunctions:\n  hello:\n    source: hello\n    idleTimeout: 10ms\napis: {web: {type: http, routes: {GET /x: {function: hello}}}}\n", `gatehouse.yaml:5:18: functions.hello.idleTimeout: 10ms is out of range: want 1s to 24h`},
		{"timeout bare number", "version: 1\nfunctions:\n  hello:\n    source: hello\n    timeout: 3\n", `gatehouse.yaml:5:14: functions.hello.timeout: 3 is not a duration: give a unit, e.g. "3s" or "3ms"`},
		{"timeout mapping", "version: 1\nfunctions:\n  hello:\n    source: hello\n    timeout: {s: 3}\n", `gatehouse.yaml:5:14: functions.hello.timeout: want a duration such as 3s or 500ms, got a mapping`},
		{"timeout too long", "version: 1\nfunctions:\n  hello:\n    source: hello\n    timeout: 901s\n" + api, `gatehouse.yaml:5:14: functions.hello.timeout: 901s is out of range: want 1ms to 900s`},
		{"timeout zero", "version: 1\nfunctions:\n  hello:\n    source: hello\n    timeout: 0s\n" + api, `gatehouse.yaml:5:14: functions.hello.timeout: 0s is out of range`},
		{"timeout negative", "version: 1\nfunctions:\n  hello:\n    source: hello\n    timeout: -1s\n" + api, `gatehouse.yaml:5:14: functions.hello.timeout: -1s is out of range`},
		{"environment list", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment: [A=1]\n", `gatehouse.yaml:5:18: functions.hello.environment: want a mapping, got a list`},
		{"environment bad name", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment:\n      1A: x\n" + api, `gatehouse.yaml:6:7: functions.hello.environment.1A: not a valid variable name`},
		{"environment name with dash", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment:\n      A-B: x\n" + api, `gatehouse.yaml:6:7: functions.hello.environment.A-B: not a valid variable name`},
		{"environment reserved AWS_", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment:\n      AWS_REGION: x\n" + api, `gatehouse.yaml:6:7: functions.hello.environment.AWS_REGION: names starting with AWS_ or GATEHOUSE_ are reserved`},
		{"environment reserved GATEHOUSE_", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment: {OK: 1, GATEHOUSE_X: y}\n" + api, `gatehouse.yaml:5:26: functions.hello.environment.GATEHOUSE_X: names starting with AWS_ or GATEHOUSE_ are reserved`},
		{"environment null value", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment:\n      A:\n", `gatehouse.yaml:6:7: functions.hello.environment.A: want a string, got nothing (null); write "" for an empty value`},
		{"environment too big", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment: {A: " + strings.Repeat("x", spec.MaxEnvironmentSize) + "}\n" + api, `gatehouse.yaml:5:5: functions.hello.environment: the variables take more than 4096 bytes (names and values); the limit is 4096 (4 KB, as in AWS Lambda)`},
		{"environment nested", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment:\n      A: {b: c}\n", `gatehouse.yaml:6:10: functions.hello.environment.A: want a string, got a mapping`},
		{"maxConcurrency negative", "version: 1\nfunctions:\n  hello: {source: hello, maxConcurrency: -1}\n" + api, `gatehouse.yaml:3:42: functions.hello.maxConcurrency: -1 is out of range: want 0 (unlimited) to 10000`},
		{"minWarm over maxConcurrency", "version: 1\nfunctions:\n  hello: {source: hello, maxConcurrency: 2, minWarm: 3}\n" + api, `gatehouse.yaml:3:54: functions.hello.minWarm: 3 is more than maxConcurrency (2)`},
		{"minWarm too many", "version: 1\nfunctions:\n  hello: {source: hello, minWarm: 1001}\n" + api, `gatehouse.yaml:3:35: functions.hello.minWarm: 1001 is out of range: want 0 to 1000`},
		{"minWarm bool", "version: 1\nfunctions:\n  hello: {source: hello, minWarm: true}\n", `gatehouse.yaml:3:35: functions.hello.minWarm: want a whole number, got the boolean true`},
		{"snapStart string", "version: 1\nfunctions:\n  hello: {source: hello, snapStart: yes}\n", `gatehouse.yaml:3:37: functions.hello.snapStart: want true or false, got the string "yes"`},
		{"snapStart on a process runtime", "version: 1\nfunctions:\n  hello: {source: hello, runtime: python3.12, handler: app.handler, snapStart: true}\n" + api, `gatehouse.yaml:3:69: functions.hello.snapStart: applies to WebAssembly functions only (runtime: wasm); a python3.12 function cannot start from a snapshot: remove it`},

		// apis.
		{"no apis", "version: 1\n" + fn, `gatehouse.yaml:1:1: apis: stack defines no apis`},
		{"empty apis", "version: 1\n" + fn + "apis: {}\n", `gatehouse.yaml:4:1: apis: stack defines no apis`},
		{"api type missing", "version: 1\n" + fn + "apis:\n  web:\n    routes: {}\n", `gatehouse.yaml:5:3: apis.web.type: required: "http", "rest" or "websocket"`},
		{"api type unknown", "version: 1\n" + fn + "apis:\n  web:\n    type: soap\n    routes: {GET /x: {function: hello}}\n", `gatehouse.yaml:6:11: apis.web.type: unknown API type "soap": want "http", "rest" or "websocket"`},
		{"api bad name", "version: 1\n" + fn + "apis:\n  web.v1:\n    type: http\n    routes: {GET /x: {function: hello}}\n", `gatehouse.yaml:5:3: apis["web.v1"]: "web.v1" is not a valid API name`},
		{"api unknown key", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    route: {}\n", `gatehouse.yaml:7:5: apis.web.route: unknown key (did you mean "routes"?); known keys here: type, mount, host, stages, routes, routeSelectionExpression, limits`},
		{"api no routes", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n", `gatehouse.yaml:5:3: apis.web.routes: the API has no routes`},
		{"api empty routes", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes: {}\n", `gatehouse.yaml:7:5: apis.web.routes: the API has no routes`},
		{"mount trailing slash", ok + "    mount: /shop/\n", `gatehouse.yaml:9:12: apis.web.mount: "/shop/" is not a mount`},
		{"mount without slash", ok + "    mount: shop\n", `gatehouse.yaml:9:12: apis.web.mount: "shop" is not a mount`},
		{"mount with parameter", ok + "    mount: /{shop}\n", `gatehouse.yaml:9:12: apis.web.mount: "/{shop}" is not a mount`},
		{"mount empty segment", ok + "    mount: /a//b\n", `gatehouse.yaml:9:12: apis.web.mount: "/a//b" is not a mount`},
		{"host with port", ok + "    host: example.com:8080\n", `gatehouse.yaml:9:11: apis.web.host: "example.com:8080": give the host name only, without a port`},
		{"host with scheme", ok + "    host: https://example.com\n", `gatehouse.yaml:9:11: apis.web.host: "https://example.com": give the host name only, without a scheme`},
		{"host bad", ok + "    host: ex_ample.com\n", `gatehouse.yaml:9:11: apis.web.host: "ex_ample.com" is not a host name`},
		{"same mount twice", ok + "  web2:\n    type: http\n    routes: {GET /y: {function: hello}}\n", `gatehouse.yaml:9:3: apis.web2.mount: APIs web and web2 are both mounted at / on any host`},
		{"same host and mount twice", ok + "    host: a.example\n    mount: /m\n  web2:\n    type: http\n    host: A.example\n    mount: /m\n    routes: {GET /y: {function: hello}}\n", `gatehouse.yaml:14:12: apis.web2.mount: APIs web and web2 are both mounted at /m on host a.example`},

		// stages.
		{"stage bad name", ok + "    stages: {pro d: {}}\n", `gatehouse.yaml:9:14: apis.web.stages["pro d"]: "pro d" is not a valid stage name`},
		{"stage unknown key", ok + "    stages:\n      prod:\n        vars: {}\n", `gatehouse.yaml:11:9: apis.web.stages.prod.vars: unknown key; known keys here: variables`},
		{"stage variable bad name", ok + "    stages:\n      prod:\n        variables: {a-b: x}\n", `gatehouse.yaml:11:21: apis.web.stages.prod.variables.a-b: not a valid stage variable name`},
		{"stage variable bad value", ok + "    stages:\n      prod:\n        variables: {a: x y}\n", `gatehouse.yaml:11:24: apis.web.stages.prod.variables.a: "x y" is not a valid stage variable value`},
		{"stage variable empty value", ok + "    stages:\n      prod:\n        variables: {a: \"\"}\n", `gatehouse.yaml:11:24: apis.web.stages.prod.variables.a: "" is not a valid stage variable value`},
		{"access log unknown variable", ok + "    stages:\n      prod:\n        accessLog: {format: '$context.requestId $context.statuss'}\n", `gatehouse.yaml:11:29: apis.web.stages.prod.accessLog.format: $context.statuss is not a variable an access log has (did you mean "status"?)`},
		{"access log no request id", ok + "    stages:\n      prod:\n        accessLog: {format: '$context.status'}\n", `gatehouse.yaml:11:29: apis.web.stages.prod.accessLog.format: the format must name $context.requestId or $context.extendedRequestId, as API Gateway's must`},
		{"access log not a format", ok + "    stages:\n      prod:\n        accessLog: {format: jsonl}\n", `gatehouse.yaml:11:29: apis.web.stages.prod.accessLog.format: "jsonl" is neither a preset (clf, json, xml, csv) nor a line with $context variables`},
		{"access log destination", ok + "    stages:\n      prod:\n        accessLog: {destination: syslog}\n", `gatehouse.yaml:11:34: apis.web.stages.prod.accessLog.destination: "syslog": want stdout, file:PATH or group:NAME`},
		{"access log group name", ok + "    stages:\n      prod:\n        accessLog: {destination: 'group:a b'}\n", `gatehouse.yaml:11:34: apis.web.stages.prod.accessLog.destination: "a b" is not a log group name`},
		{"access log file size", ok + "    stages:\n      prod:\n        accessLog: {destination: 'file:a.log', maxFileMB: 0}\n", `gatehouse.yaml:11:59: apis.web.stages.prod.accessLog.maxFileMB: 0 is out of range: want 1 to 4096`},
		{"access log unknown key", ok + "    stages:\n      prod:\n        accessLog: {formt: json}\n", `gatehouse.yaml:11:21: apis.web.stages.prod.accessLog.formt: unknown key (did you mean "format"?); known keys here: format, destination, maxFileMB`},
		{"stage too many variables", ok + "    stages:\n      prod:\n        variables: {" + manyVars(101) + "}\n", `gatehouse.yaml:11:9: apis.web.stages.prod.variables: more than 100 variables in one stage`},

		// routes.
		{"route key shape", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      /x: {function: hello}\n", `gatehouse.yaml:8:7: apis.web.routes["/x"]: not a route key: want "$default" or "METHOD /path"`},
		{"route method lower case", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      get /x: {function: hello}\n", `gatehouse.yaml:8:7: apis.web.routes["get /x"]: the method "get" must be an upper-case word`},
		{"route path relative", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET x: {function: hello}\n", `gatehouse.yaml:8:7: apis.web.routes["GET x"]: the path must start with /`},
		{"route path with an Express parameter", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /greet/:name: {function: hello}\n", `gatehouse.yaml:8:7: apis.web.routes["GET /greet/:name"]: the segment ":name" would match only the literal text ":name"; write a path parameter as {name}`},
		{"route path with a glob", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /files/*: {function: hello}\n", `gatehouse.yaml:8:7: apis.web.routes["GET /files/*"]: the segment "*" would match only a literal *; write a greedy path parameter as {proxy+}`},
		{"route path with space", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /a b: {function: hello}\n", `gatehouse.yaml:8:7: apis.web.routes["GET /a b"]: the path must not contain spaces`},
		{"route value string", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x: hello\n", `gatehouse.yaml:8:15: apis.web.routes["GET /x"]: want a mapping such as {function: NAME}, got the string "hello"`},
		{"route without target", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {timeout: 1s}\n", `gatehouse.yaml:8:7: apis.web.routes["GET /x"]: the route has no target: add function: NAME`},
		{"route null", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n", `gatehouse.yaml:8:7: apis.web.routes["GET /x"]: the route has no target`},
		{"route unknown key", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: hello, fn: x}\n", `gatehouse.yaml:8:33: apis.web.routes["GET /x"].fn: unknown key; known keys here: function, timeout, integration`},
		{"route unknown function", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: helo}\n", `gatehouse.yaml:8:26: apis.web.routes["GET /x"].function: no function named "helo" in functions (defined: hello)`},
		{"route unknown qualified function", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: helo:prod}\n", `gatehouse.yaml:8:26: apis.web.routes["GET /x"].function: no function named "helo" in functions (defined: hello)`},
		{"route bad qualifier", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: hello:03}\n", `gatehouse.yaml:8:26: apis.web.routes["GET /x"].function: "03" is not a version or alias of hello: want $LATEST, a version number (3) or an alias name (1 to 128 letters, digits, - and _, not all digits)`},
		{"route empty qualifier", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: \"hello:\"}\n", `gatehouse.yaml:8:26: apis.web.routes["GET /x"].function: "" is not a version or alias of hello: want $LATEST, a version number (3) or an alias name (1 to 128 letters, digits, - and _, not all digits)`},
		{"route unknown target", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: helo}\n", `gatehouse.yaml:9:31: apis.web.routes["GET /x"].integration.target: no function named "helo"`},
		{"route to no functions", "version: 1\napis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: hello}\n", `gatehouse.yaml:6:26: apis.web.routes["GET /x"].function: no function named "hello" in functions (it defines none)`},
		{"function and integration", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        function: hello\n        integration: {target: hello}\n", `gatehouse.yaml:10:9: apis.web.routes["GET /x"]: give either function or integration, not both`},
		{"timeout beside integration", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello}\n        timeout: 1s\n", `gatehouse.yaml:10:9: apis.web.routes["GET /x"].timeout: with integration, put timeout inside it`},
		{"integration target missing", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: function}\n", `gatehouse.yaml:9:9: apis.web.routes["GET /x"].integration.target: required: the name of a function`},
		{"integration type http", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: http, target: hello}\n", `gatehouse.yaml:9:29: apis.web.routes["GET /x"].integration.type: unknown integration type "http": want function, http_proxy or mock`},
		{"integration unknown key", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello, uri: x}\n", `gatehouse.yaml:9:38: apis.web.routes["GET /x"].integration.uri: unknown key`},
		{"payload 2", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello, payloadFormatVersion: 2}\n", `gatehouse.yaml:9:60: apis.web.routes["GET /x"].integration.payloadFormatVersion: unknown payload format version "2": want "2.0" or "1.0"`},
		{"proxy without target", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: http_proxy}\n", `gatehouse.yaml:9:9: apis.web.routes["GET /x"].integration.target: required: the backend's URL`},
		{"proxy target not a URL", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: http_proxy, target: \"orders:8080\"}\n", `gatehouse.yaml:9:49: apis.web.routes["GET /x"].integration.target: "orders:8080" is not a URL such as http://orders.internal:8080/{proxy}`},
		{"proxy target no host", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: http_proxy, target: \"http:///x\"}\n", `gatehouse.yaml:9:49: apis.web.routes["GET /x"].integration.target: "http:///x" has no host`},
		{"proxy target unknown param", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: http_proxy, target: \"http://b/{id}\"}\n", `gatehouse.yaml:9:49: apis.web.routes["GET /x"].integration.target: "http://b/{id}" names the path parameter {id}, and the route "GET /x" has none`},
		{"proxy bad stage variable", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: http_proxy, target: \"http://${stage.host}/\"}\n", `gatehouse.yaml:9:49: apis.web.routes["GET /x"].integration.target: "${stage.host}/": only ${stageVariables.NAME} may stand in a target`},
		{"proxy bad method", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: http_proxy, target: \"http://b/\", method: FETCH}\n", `gatehouse.yaml:9:70: apis.web.routes["GET /x"].integration.method: "FETCH" is not a method: want ANY (the client's method), GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS`},
		{"proxy payload 2.0", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: http_proxy, target: \"http://b/\", payloadFormatVersion: \"2.0\"}\n", `gatehouse.yaml:9:62: apis.web.routes["GET /x"].integration.payloadFormatVersion: http_proxy integrations send the request itself, not an event; remove it`},
		{"proxy tls on http", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: http_proxy, target: \"http://b/\", tls: {serverName: b.example}}\n", `gatehouse.yaml:9:62: apis.web.routes["GET /x"].integration.tls: only for https targets; the target is "http://b/"`},
		{"proxy missing ca file", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: http_proxy, target: \"https://b/\", tls: {caFile: ca.pem}}\n", `gatehouse.yaml:9:77: apis.web.routes["GET /x"].integration.tls.caFile: "ca.pem" does not exist`},
		{"proxy bad mapping key", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: http_proxy, target: \"http://b/\", requestParameters: {\"overwrite:header.host\": x}}\n", `gatehouse.yaml:9:62: apis.web.routes["GET /x"].integration.requestParameters: requestParameters["overwrite:header.host"]: header "host" cannot be mapped: API Gateway, and so Gatehouse, keeps access-control-*, apigw-*, x-amz-*, x-amzn-*, x-forwarded-*, authorization, connection, content-length, expect, forwarded, host, keep-alive, max-forwards, origin, proxy-authenticate, proxy-authorization, proxy-connection, server, te, trailer, transfer-encoding, upgrade and via to itself`},
		{"proxy bad mapping value", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: http_proxy, target: \"http://b/\", requestParameters: {\"overwrite:header.x-a\": \"$response.body.x\"}}\n", `gatehouse.yaml:9:62: apis.web.routes["GET /x"].integration.requestParameters: requestParameters["overwrite:header.x-a"]: a request mapping cannot read $response.body.x: it reads $request.header.<name>, $request.querystring.<name>, $request.body.<path>, $request.path, $request.path.<name>, $context.<name> or $stageVariables.<name> (a value that starts with $ is one reference; to mix text and references write ${...}, as in "Bearer ${request.header.token}")`},
		{"function with request mapping", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello, requestParameters: {\"overwrite:header.x-a\": \"b\"}}\n", `gatehouse.yaml:9:38: apis.web.routes["GET /x"].integration.requestParameters: only for http_proxy integrations: a function receives the whole request in its event; remove it`},
		{"function with method", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello, method: GET}\n", `gatehouse.yaml:9:38: apis.web.routes["GET /x"].integration.method: only for http_proxy integrations; remove it`},
		{"response mapping bad status", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello, responseParameters: {\"2xx\": {\"overwrite:statuscode\": \"200\"}}}\n", `gatehouse.yaml:9:59: apis.web.routes["GET /x"].integration.responseParameters.2xx: "2xx" is not a status code: responseParameters are keyed by the integration's status code, 200 to 599`},
		{"response mapping bad key", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello, responseParameters: {\"404\": {\"overwrite:querystring.a\": \"b\"}}}\n", `gatehouse.yaml:9:38: apis.web.routes["GET /x"].integration.responseParameters: responseParameters["404"]["overwrite:querystring.a"]: a response mapping cannot set a query string: a key is append:, overwrite: or remove: followed by header.<name>, or overwrite:statuscode`},
		{"mock with target", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: mock, target: hello}\n", `gatehouse.yaml:9:35: apis.web.routes["GET /x"].integration.target: a mock integration has no target: the gateway answers with statusCode, headers and body; remove it`},
		{"mock bad status", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: mock, statusCode: 700}\n", `gatehouse.yaml:9:47: apis.web.routes["GET /x"].integration.statusCode: 700 is not a status code: want 100 to 599`},
		{"mock bad header", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: mock, headers: {\"bad header\": x}}\n", `gatehouse.yaml:9:45: apis.web.routes["GET /x"].integration.headers["bad header"]: "bad header" is not a header name`},
		{"mock directive", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: mock, body: \"#if(1)\\nx\\n#end\"}\n", `gatehouse.yaml:9:41: apis.web.routes["GET /x"].integration.body: #if at offset 0 (line 1, column 1): mapping-template directives (#if, #foreach, #set) are not supported in mock bodies`},
		{"mock fields on function", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello, body: x}\n", `gatehouse.yaml:9:9: apis.web.routes["GET /x"].integration: statusCode, headers and body are for mock integrations; remove them`},
		{"proxy default route param", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      $default:\n        integration: {type: http_proxy, target: \"http://b/{proxy}\"}\n", `gatehouse.yaml:9:49: apis.web.routes["$default"].integration.target: "http://b/{proxy}" names the path parameter {proxy}, and the $default route has none: the request's path is appended to the target's`},
		{"proxy in websocket api", "version: 1\n" + fn + "apis:\n  chat:\n    type: websocket\n    routes:\n      $default:\n        integration: {type: http_proxy, target: \"http://b/\"}\n", `gatehouse.yaml:9:29: apis.chat.routes["$default"].integration.type: http_proxy integrations are for http APIs; websocket routes take function integrations`},
		{"integration timeout too long", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello, timeout: 31s}\n", `gatehouse.yaml:9:47: apis.web.routes["GET /x"].integration.timeout: 31s is out of range: want 50ms to 30s`},
		{"shorthand timeout too short", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: hello, timeout: 49ms}\n", `gatehouse.yaml:8:42: apis.web.routes["GET /x"].timeout: 49ms is out of range: want 50ms to 30s`},
		{"too many routes", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n" + manyRoutes(301), `gatehouse.yaml:308:7: apis.web.routes: more than 300 routes in one API`},

		// websocket APIs (lines 4-7 as in ws; routes from line 8).
		{"ws http route key", ws + "      GET /x: {function: hello}\n", `gatehouse.yaml:8:7: apis.chat.routes["GET /x"]: an http route key in a websocket API; ` + wsKeys},
		{"ws http default-looking key", ws + "      ANY /{proxy+}: {function: hello}\n", `gatehouse.yaml:8:7: apis.chat.routes["ANY /{proxy+}"]: an http route key in a websocket API; ` + wsKeys},
		{"ws unknown $ key", ws + "      $conect: {function: hello}\n", `gatehouse.yaml:8:7: apis.chat.routes["$conect"]: unknown predefined route key (did you mean "$connect"?): only $connect, $disconnect and $default may start with $; ` + wsKeys},
		{"ws $ key far off", ws + "      $message: {function: hello}\n", `gatehouse.yaml:8:7: apis.chat.routes["$message"]: unknown predefined route key: only $connect, $disconnect and $default may start with $; ` + wsKeys},
		{"ws key too long", ws + "      " + strings.Repeat("a", 129) + ": {function: hello}\n", `gatehouse.yaml:8:7: apis.chat.routes.` + strings.Repeat("a", 129) + `: a custom route key is 1 to 128 characters; ` + wsKeys},
		{"ws key empty", ws + "      \"\": {function: hello}\n", `gatehouse.yaml:8:7: apis.chat.routes[""]: a custom route key is 1 to 128 characters; ` + wsKeys},
		{"ws key control character", ws + "      \"a\\tb\": {function: hello}\n", `gatehouse.yaml:8:7: apis.chat.routes["a\tb"]: a route key must not contain control characters`},
		{"ws duplicate route key", ws + "      $default: {function: hello}\n      \"$default\": {function: hello}\n", `gatehouse.yaml:9:7: invalid YAML: mapping key "$default" already defined at line 8, column 7`},
		{"invocationType unknown", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: hello, invocationType: later}\n", `gatehouse.yaml:8:49: apis.web.routes["GET /x"].invocationType: "later" is not an invocation type: want RequestResponse (the default) or Event`},
		{"invocationType beside integration", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello}\n        invocationType: Event\n", `gatehouse.yaml:10:9: apis.web.routes["GET /x"].invocationType: with integration, put invocationType inside it`},
		{"invocationType on a mock", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: mock, invocationType: Event}\n", `gatehouse.yaml:9:35: apis.web.routes["GET /x"].integration.invocationType: only for function integrations; remove it`},
		{"ws invocationType", ws + "      $default: {function: hello, invocationType: event}\n", `gatehouse.yaml:8:35: apis.chat.routes["$default"].invocationType: only for http and rest APIs: a websocket route's function answers its client`},
		{"ws no routes", "version: 1\n" + fn + "apis:\n  chat:\n    type: websocket\n", `gatehouse.yaml:5:3: apis.chat.routes: the API has no routes`},
		{"ws empty routes", ws + "      {}\n", `gatehouse.yaml:7:5: apis.chat.routes: the API has no routes`},
		{"ws routeResponse on $connect", ws + "      $connect: {function: hello, routeResponse: true}\n", `gatehouse.yaml:8:50: apis.chat.routes["$connect"].routeResponse: $connect routes cannot send a route response: the $connect response decides the handshake, and after $disconnect the client is gone`},
		{"ws routeResponse on $disconnect", ws + "      $disconnect:\n        function: hello\n        routeResponse: true\n", `gatehouse.yaml:10:24: apis.chat.routes["$disconnect"].routeResponse: $disconnect routes cannot send a route response`},
		{"ws routeResponse not a boolean", ws + "      $default: {function: hello, routeResponse: 1}\n", `gatehouse.yaml:8:50: apis.chat.routes["$default"].routeResponse: want true or false, got the number 1`},
		{"ws routeResponse string", ws + "      $default: {function: hello, routeResponse: \"true\"}\n", `gatehouse.yaml:8:50: apis.chat.routes["$default"].routeResponse: want true or false, got the string "true"`},
		{"ws timeout too long", ws + "      $default: {function: hello, timeout: 30s}\n", `gatehouse.yaml:8:44: apis.chat.routes["$default"].timeout: 30s is out of range: want 50ms to 29s (the limit for websocket APIs)`},
		{"ws timeout too short", ws + "      $default:\n        integration: {target: hello, timeout: 49ms}\n", `gatehouse.yaml:9:47: apis.chat.routes["$default"].integration.timeout: 49ms is out of range: want 50ms to 29s (the limit for websocket APIs)`},
		{"ws payloadFormatVersion", ws + "      $default:\n        integration: {target: hello, payloadFormatVersion: \"2.0\"}\n", `gatehouse.yaml:9:38: apis.chat.routes["$default"].integration.payloadFormatVersion: only for http APIs: websocket routes receive WebSocket events; remove it`},
		{"ws unknown function", ws + "      $default: {function: helo:prod}\n", `gatehouse.yaml:8:28: apis.chat.routes["$default"].function: no function named "helo" in functions (defined: hello)`},
		{"ws selection composite", wsRSE("\"${request.body.a}/${request.body.b}\""), `gatehouse.yaml:7:31: apis.chat.routeSelectionExpression: "${request.body.a}/${request.body.b}" is not a supported route selection expression: ` + wsRSEWant},
		{"ws selection header", wsRSE("$request.header.x"), `gatehouse.yaml:7:31: apis.chat.routeSelectionExpression: "$request.header.x" is not a supported route selection expression: ` + wsRSEWant},
		{"ws selection empty name", wsRSE("$request.body."), `gatehouse.yaml:7:31: apis.chat.routeSelectionExpression: "$request.body." is not a supported route selection expression: ` + wsRSEWant},
		{"ws selection empty segment", wsRSE("$request.body.a..b"), `gatehouse.yaml:7:31: apis.chat.routeSelectionExpression: "$request.body.a..b" is not a supported route selection expression: ` + wsRSEWant},
		{"ws selection JSONPath", wsRSE("$request.body.items[0]"), `gatehouse.yaml:7:31: apis.chat.routeSelectionExpression: "$request.body.items[0]" is not a supported route selection expression: ` + wsRSEWant},
		{"ws selection empty", wsRSE("\"\""), `gatehouse.yaml:7:31: apis.chat.routeSelectionExpression: "" is not a supported route selection expression: ` + wsRSEWant},
		{"ws selection $default unescaped", wsRSE("$default"), `gatehouse.yaml:7:31: apis.chat.routeSelectionExpression: "$default" is not a route selection expression: write \$default, with the backslash, to send every message to the $default route`},
		{"ws selection number", wsRSE("3"), `gatehouse.yaml:7:31: apis.chat.routeSelectionExpression: want a string, got the number 3 (quote it: "3")`},
		{"ws limits not a mapping", wsLimits("5"), `gatehouse.yaml:7:13: apis.chat.limits: want a mapping, got the number 5`},
		{"ws limits unknown key", wsLimits("{maxMesageBytes: 1}"), `gatehouse.yaml:7:14: apis.chat.limits.maxMesageBytes: unknown key (did you mean "maxMessageBytes"?); known keys here: maxMessageBytes, maxFrameBytes, idleTimeout, maxConnectionDuration, sendQueue`},
		{"ws maxMessageBytes too small", wsLimits("{maxMessageBytes: 1023}"), `gatehouse.yaml:7:31: apis.chat.limits.maxMessageBytes: 1023 is out of range: want 1024 (1 KiB) to 16777216 (16 MiB)`},
		{"ws maxMessageBytes too large", wsLimits("{maxMessageBytes: 16777217}"), `gatehouse.yaml:7:31: apis.chat.limits.maxMessageBytes: 16777217 is out of range: want 1024 (1 KiB) to 16777216 (16 MiB)`},
		{"ws maxMessageBytes with unit", wsLimits("{maxMessageBytes: 128KB}"), `gatehouse.yaml:7:31: apis.chat.limits.maxMessageBytes: want a whole number of bytes, got the string "128KB"`},
		{"ws maxFrameBytes over maxMessageBytes", wsLimits("{maxMessageBytes: 4096, maxFrameBytes: 8192}"), `gatehouse.yaml:7:52: apis.chat.limits.maxFrameBytes: 8192 is out of range: want 1024 (1 KiB) to maxMessageBytes (4096)`},
		{"ws maxFrameBytes over the default maxMessageBytes", wsLimits("{maxFrameBytes: 131073}"), `gatehouse.yaml:7:29: apis.chat.limits.maxFrameBytes: 131073 is out of range: want 1024 (1 KiB) to maxMessageBytes (131072)`},
		{"ws maxFrameBytes too small", wsLimits("{maxFrameBytes: 1000}"), `gatehouse.yaml:7:29: apis.chat.limits.maxFrameBytes: 1000 is out of range: want 1024 (1 KiB) to maxMessageBytes (131072)`},
		{"ws idleTimeout too long", wsLimits("{idleTimeout: 2h1s}"), `gatehouse.yaml:7:27: apis.chat.limits.idleTimeout: 2h0m1s is out of range: want 1s to 2h`},
		{"ws idleTimeout zero", wsLimits("{idleTimeout: 0s}"), `gatehouse.yaml:7:27: apis.chat.limits.idleTimeout: 0s is out of range: want 1s to 2h`},
		{"ws idleTimeout bare number", wsLimits("{idleTimeout: 600}"), `gatehouse.yaml:7:27: apis.chat.limits.idleTimeout: 600 is not a duration: give a unit, e.g. "600s" or "600ms"`},
		{"ws maxConnectionDuration too long", wsLimits("{maxConnectionDuration: 25h}"), `gatehouse.yaml:7:37: apis.chat.limits.maxConnectionDuration: 25h0m0s is out of range: want 1s to 24h`},
		{"ws maxConnectionDuration too short", wsLimits("{maxConnectionDuration: 999ms}"), `gatehouse.yaml:7:37: apis.chat.limits.maxConnectionDuration: 999ms is out of range: want 1s to 24h`},
		{"ws sendQueue zero", wsLimits("{sendQueue: 0}"), `gatehouse.yaml:7:25: apis.chat.limits.sendQueue: 0 is out of range: want 1 to 65536 (messages)`},
		{"ws sendQueue too large", wsLimits("{sendQueue: 65537}"), `gatehouse.yaml:7:25: apis.chat.limits.sendQueue: 65537 is out of range: want 1 to 65536 (messages)`},
		{"ws same mount as http", ws + "      $default: {function: hello}\n  web:\n    type: http\n    routes: {GET /x: {function: hello}}\n", `gatehouse.yaml:9:3: apis.web.mount: APIs chat and web are both mounted at / on any host; give them different mounts or hosts`},
		{"ws bad mount", ws + "      $default: {function: hello}\n    mount: /chat/\n", `gatehouse.yaml:9:12: apis.chat.mount: "/chat/" is not a mount`},
		{"http routeSelectionExpression", ok + "    routeSelectionExpression: $request.body.action\n", `gatehouse.yaml:9:5: apis.web.routeSelectionExpression: only for websocket APIs (type: websocket); remove it from this http API`},
		{"http limits", ok + "    limits: {sendQueue: 1}\n", `gatehouse.yaml:9:5: apis.web.limits: only for websocket APIs (type: websocket); remove it from this http API`},
		{"http routeResponse", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: hello, routeResponse: false}\n", `gatehouse.yaml:8:33: apis.web.routes["GET /x"].routeResponse: only for websocket APIs (type: websocket); remove it from this http API`},
		{"unknown type with ws keys", "version: 1\n" + fn + "apis:\n  web:\n    type: soap\n    limits: {}\n    routes: {GET /x: {function: hello, routeResponse: true}}\n", `gatehouse.yaml:6:11: apis.web.type: unknown API type "soap": want "http", "rest" or "websocket"`},

		// iam (after ok: lines from 9).
		{"iam not a mapping", ok + "iam: [a]\n", `gatehouse.yaml:9:6: iam: want a mapping, got a list`},
		{"iam unknown key", ok + "iam:\n  accesKeys: []\n", `gatehouse.yaml:10:3: iam.accesKeys: unknown key (did you mean "accessKeys"?); known keys here: region, accountId, accessKeys`},
		{"iam region bad", ok + "iam:\n  region: US_EAST\n", `gatehouse.yaml:10:11: iam.region: "US_EAST" is not a region name: want lower-case letters, digits and -, such as us-east-1 (at most 32 characters)`},
		{"iam region empty", ok + "iam:\n  region: \"\"\n", `gatehouse.yaml:10:11: iam.region: "" is not a region name`},
		{"iam account id short", ok + "iam:\n  accountId: \"12345\"\n", `gatehouse.yaml:10:14: iam.accountId: "12345" is not an account id: want twelve digits, such as 000000000000`},
		{"iam account id letters", ok + "iam:\n  accountId: 12345678901x\n", `gatehouse.yaml:10:14: iam.accountId: "12345678901x" is not an account id`},
		{"iam accessKeys mapping", ok + "iam:\n  accessKeys: {id: AKIAIOSFODNN7EXAMPLE}\n", `gatehouse.yaml:10:15: iam.accessKeys: want a list, got a mapping`},
		{"iam access key string", ok + "iam:\n  accessKeys:\n    - AKIAIOSFODNN7EXAMPLE:Sekr3tSekr3tSekr3t\n", `gatehouse.yaml:11:7: iam.accessKeys[0]: want a mapping of id and secret (or secretFromEnv), got a string`},
		{"iam id missing", ok + "iam:\n  accessKeys:\n    - secret: Sekr3tSekr3tSekr3t\n", `gatehouse.yaml:11:7: iam.accessKeys[0].id: required: the access key ID, such as AKIAIOSFODNN7EXAMPLE`},
		{"iam id bad", ok + "iam:\n  accessKeys:\n    - id: Sekr3t/Sekr3tSekr3t\n      secret: Sekr3tSekr3tSekr3t\n", `gatehouse.yaml:11:11: iam.accessKeys[0].id: not a valid access key ID: want 16 to 128 upper-case letters and digits, such as AKIAIOSFODNN7EXAMPLE (the value is not shown)`},
		{"iam id too short", ok + "iam:\n  accessKeys:\n    - {id: AKIAEXAMPLE123, secret: Sekr3tSekr3tSekr3t}\n", `gatehouse.yaml:11:12: iam.accessKeys[0].id: not a valid access key ID: want 16 to 128 upper-case letters and digits`},
		{"iam id duplicate", ok + "iam:\n  accessKeys:\n    - {id: AKIAIOSFODNN7EXAMPLE, secret: Sekr3tSekr3tSekr3t}\n    - {id: AKIAIOSFODNN7EXAMPLE, secret: Sekr3tSekr3tSekr3t}\n", `gatehouse.yaml:12:12: iam.accessKeys[1].id: the access key AKIAIOSFODNN7EXAMPLE is listed twice`},
		{"iam no secret", ok + "iam:\n  accessKeys:\n    - id: AKIAIOSFODNN7EXAMPLE\n", `gatehouse.yaml:11:7: iam.accessKeys[0]: the access key has no secret: add secretFromEnv: VARIABLE (or secret: …)`},
		{"iam both secrets", ok + "iam:\n  accessKeys:\n    - id: AKIAIOSFODNN7EXAMPLE\n      secret: Sekr3tSekr3tSekr3t\n      secretFromEnv: CHAT_SECRET\n", `gatehouse.yaml:13:7: iam.accessKeys[0]: give either secret or secretFromEnv, not both`},
		{"iam secret short", ok + "iam:\n  accessKeys:\n    - id: AKIAIOSFODNN7EXAMPLE\n      secret: Sekr3t\n", `gatehouse.yaml:12:15: iam.accessKeys[0].secret: the secret has 6 characters; want 16 to 128 (the value is not shown)`},
		{"iam secret too long", ok + "iam:\n  accessKeys:\n    - id: AKIAIOSFODNN7EXAMPLE\n      secret: " + strings.Repeat("Sekr3t", 22) + "\n", `gatehouse.yaml:12:15: iam.accessKeys[0].secret: the secret has 132 characters; want 16 to 128 (the value is not shown)`},
		{"iam secret with space", ok + "iam:\n  accessKeys:\n    - id: AKIAIOSFODNN7EXAMPLE\n      secret: Sekr3t Sekr3t Sekr3t\n", `gatehouse.yaml:12:15: iam.accessKeys[0].secret: the secret holds spaces, control or non-ASCII characters; want printable ASCII (the value is not shown)`},
		{"iam secret number", ok + "iam:\n  accessKeys:\n    - id: AKIAIOSFODNN7EXAMPLE\n      secret: 73280012345678901\n", `gatehouse.yaml:12:15: iam.accessKeys[0].secret: want a string, got a number (quote it; the value is not shown)`},
		{"iam secret mapping", ok + "iam:\n  accessKeys:\n    - id: AKIAIOSFODNN7EXAMPLE\n      secret: {Sekr3t: x}\n", `gatehouse.yaml:12:15: iam.accessKeys[0].secret: want a string, got a mapping`},
		{"iam secret null", ok + "iam:\n  accessKeys:\n    - id: AKIAIOSFODNN7EXAMPLE\n      secret:\n", `gatehouse.yaml:12:7: iam.accessKeys[0].secret: want a string, got nothing (null)`},
		{"iam secretFromEnv unset", ok + "iam:\n  accessKeys:\n    - id: AKIAIOSFODNN7EXAMPLE\n      secretFromEnv: GATEHOUSE_TEST_EMPTY_SECRET\n", `gatehouse.yaml:12:22: iam.accessKeys[0].secretFromEnv: the environment variable GATEHOUSE_TEST_EMPTY_SECRET is not set or empty; set it to the secret access key`},
		{"iam secretFromEnv short", ok + "iam:\n  accessKeys:\n    - id: AKIAIOSFODNN7EXAMPLE\n      secretFromEnv: GATEHOUSE_TEST_SHORT_SECRET\n", `gatehouse.yaml:12:22: iam.accessKeys[0].secretFromEnv: the secret in the environment variable GATEHOUSE_TEST_SHORT_SECRET has 6 characters; want 16 to 128 (the value is not shown)`},
		{"iam secretFromEnv bad name", ok + "iam:\n  accessKeys:\n    - id: AKIAIOSFODNN7EXAMPLE\n      secretFromEnv: $CHAT_SECRET\n", `gatehouse.yaml:12:22: iam.accessKeys[0].secretFromEnv: "$CHAT_SECRET" is not an environment variable name: want letters, digits and _, not starting with a digit`},
		{"iam access key unknown key", ok + "iam:\n  accessKeys:\n    - id: AKIAIOSFODNN7EXAMPLE\n      secretFromENV: X\n", `gatehouse.yaml:12:7: iam.accessKeys[0].secretFromENV: unknown key (did you mean "secretFromEnv"?); known keys here: id, secret, secretFromEnv`},
		{"iam second key bad", ok + "iam:\n  region: eu-west-1\n  accessKeys:\n    - {id: AKIAIOSFODNN7EXAMPLE, secret: Sekr3tSekr3tSekr3t}\n    - id: AKIAI44QH8DHBEXAMPLE\n      secret: Sekr3t\n", `gatehouse.yaml:14:15: iam.accessKeys[1].secret: the secret has 6 characters`},
		{"iam before functions", "version: 1\nfunctions:\n  hello: {source: hello, memory: 1}\n" + api + "iam: {region: X}\n", `gatehouse.yaml:9:15: iam.region: "X" is not a region name`},
		{"anchor under an unknown key", "version: 1\n" + fn + "x: &r {GET /x: {function: nope}}\n", `gatehouse.yaml:4:1: x: unknown key`},
		{"error inside an alias", "version: 1\nfunctions:\n  a: &a {source: hello, memory: 1}\n  b: *a\n" + "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: a}\n", `gatehouse.yaml:3:33: functions.a.memory: 1 is out of range`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := stackDir(t)
			s, err := Parse("gatehouse.yaml", []byte(tt.yaml), dir)
			if err == nil {
				t.Fatalf("Parse succeeded (%+v); want an error starting %q", s, tt.want)
			}
			want := strings.ReplaceAll(tt.want, "DIR", dir)
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error\n got %s\nwant %s…", err, want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has several lines:\n%s", err)
			}
			if strings.Contains(err.Error(), "Sekr3t") {
				t.Errorf("error shows a secret: %s", err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 || e.Column < 1 || e.File != "gatehouse.yaml" {
				t.Errorf("error %#v: want an *Error with a position", err)
			}
		})
	}
}

func manyVars(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("v" + strconv.Itoa(i) + ": x")
	}
	return b.String()
}

func manyRoutes(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("      GET /r" + strconv.Itoa(i) + ": {function: hello}\n")
	}
	return b.String()
}

func manyFunctions(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("  f" + strconv.Itoa(i) + ": {source: hello}\n")
	}
	return b.String()
}

// manyAPIs returns n APIs that all use the routes anchored as &r.
func manyAPIs(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString("  a" + strconv.Itoa(i) + ": {type: http, mount: /a" + strconv.Itoa(i) + ", routes: *r}\n")
	}
	return b.String()
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.yaml")
	_, err := Load(missing)
	var e *Error
	if !errors.As(err, &e) || e.Line != 0 || e.File != missing || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %#v", err)
	}
	if want := missing + ": cannot open stack file: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("missing file: got %q, want prefix %q", err, want)
	}

	big := filepath.Join(dir, "big.yaml")
	data := append([]byte("version: 1\n#"), make([]byte, spec.MaxFileSize)...)
	for i := range data[12:] {
		data[12+i] = 'x'
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(big)
	if want := big + ":1:1: the stack file is larger than the limit of 1048576 bytes (1 MiB)"; err == nil || err.Error() != want {
		t.Errorf("big file: got %v, want %s", err, want)
	}

	_, err = Load(dir)
	if !errors.As(err, &e) || !strings.HasPrefix(err.Error(), dir+": cannot read stack file: ") {
		t.Errorf("directory: got %v", err)
	}
}

func TestParseNameAndDir(t *testing.T) {
	dir := stackDir(t)
	t.Chdir(dir)
	s, err := Parse("", []byte("version: 1\nfunctions: {f: {source: hello}}\napis: {a: {type: http, routes: {$default: {function: f}}}}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	clearPositions(s)
	if s.Dir != dir || s.File != "<stack>" || s.Functions["f"].Source != filepath.Join(dir, "hello") {
		t.Errorf("Dir, File, Source = %q, %q, %q", s.Dir, s.File, s.Functions["f"].Source)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"full", &Error{File: "g.yaml", Line: 7, Column: 5, Path: "functions.hello.timeout", Msg: "bad"}, "g.yaml:7:5: functions.hello.timeout: bad"},
		{"no path", &Error{File: "g.yaml", Line: 2, Column: 1, Msg: "invalid YAML: x"}, "g.yaml:2:1: invalid YAML: x"},
		{"no position", &Error{File: "g.yaml", Path: "apis", Msg: "stack defines no apis"}, "g.yaml: apis: stack defines no apis"},
		{"nothing but a message", &Error{Msg: "m"}, "m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSourceKindString(t *testing.T) {
	for k, want := range map[spec.SourceKind]string{spec.SourceGo: "go", spec.SourceWasm: "wasm", 0: "SourceKind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("%d: got %q, want %q", int(k), got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	valid := func() *spec.Stack {
		return &spec.Stack{Version: 1, Name: "s", File: "code", IAM: spec.IAM{Region: spec.DefaultRegion, AccountID: spec.DefaultAccountID},
			Functions: map[string]spec.Function{"f": {Name: "f", Source: "/src/f", Kind: spec.SourceGo,
				FunctionSettings: spec.FunctionSettings{MemoryMB: 128, Timeout: spec.Duration(time.Second), IdleTimeout: spec.Duration(time.Minute)}}},
			APIs: map[string]spec.API{"a": {Name: "a", Type: "http", Mount: "/",
				Stages: map[string]spec.Stage{"$default": {Name: "$default"}},
				Routes: []spec.Route{{Key: "GET /x", Authorization: noAuth, Integration: spec.Integration{Type: "function", Target: "f", PayloadFormatVersion: "2.0", Timeout: spec.Duration(time.Second)}}}}},
		}
	}
	validWS := func() spec.API {
		return spec.API{Name: "a", Type: "websocket", Mount: "/",
			Stages:                   map[string]spec.Stage{"$default": {Name: "$default"}},
			Routes:                   []spec.Route{{Key: "$default", Authorization: noAuth, Integration: spec.Integration{Type: "function", Target: "f", Timeout: spec.Duration(time.Second)}, RouteResponse: true}},
			RouteSelectionExpression: spec.DefaultRouteSelectionExpression,
			WebSocket: &spec.WebSocketLimits{MaxMessageBytes: spec.DefaultMaxMessageBytes, MaxFrameBytes: spec.DefaultMaxFrameBytes,
				IdleTimeout: spec.Duration(spec.DefaultWSIdleTimeout), MaxConnectionDuration: spec.Duration(spec.DefaultMaxConnectionDuration), SendQueue: spec.DefaultSendQueue},
		}
	}
	tests := []struct {
		name   string
		change func(s *spec.Stack)
		want   string // "" for valid
	}{
		{"valid", func(*spec.Stack) {}, ""},
		{"zero stack", func(s *spec.Stack) { *s = spec.Stack{} }, "version: version 0 is not supported"},
		{"relative source", func(s *spec.Stack) { f := s.Functions["f"]; f.Source = "src"; s.Functions["f"] = f }, `functions.f.source: want an absolute path, got "src"`},
		{"kind unset", func(s *spec.Stack) { f := s.Functions["f"]; f.Kind = 0; s.Functions["f"] = f }, `functions.f.source: unknown source kind SourceKind(0)`},
		{"memory unset", func(s *spec.Stack) { f := s.Functions["f"]; f.MemoryMB = 0; s.Functions["f"] = f }, `functions.f.memory: 0 is out of range`},
		{"name mismatch", func(s *spec.Stack) { f := s.Functions["f"]; f.Name = "g"; s.Functions["f"] = f }, `functions.f: Name "g" differs from the map key`},
		{"no stages", func(s *spec.Stack) { a := s.APIs["a"]; a.Stages = nil; s.APIs["a"] = a }, `apis.a.stages: no stages`},
		{"duplicate route", func(s *spec.Stack) { a := s.APIs["a"]; a.Routes = append(a.Routes, a.Routes[0]); s.APIs["a"] = a }, `apis.a.routes["GET /x"]: duplicate route`},
		{"too many routes", func(s *spec.Stack) {
			a := s.APIs["a"]
			for i := range spec.MaxRoutesPerAPI {
				a.Routes = append(a.Routes, spec.Route{Key: "GET /r" + strconv.Itoa(i), Authorization: noAuth, Integration: a.Routes[0].Integration})
			}
			s.APIs["a"] = a
		}, `apis.a.routes: more than 300 routes`},
		{"unknown target", func(s *spec.Stack) { a := s.APIs["a"]; a.Routes[0].Integration.Target = "g"; s.APIs["a"] = a }, `apis.a.routes["GET /x"].integration.target: no function named "g"`},
		{"environment too big", func(s *spec.Stack) {
			f := s.Functions["f"]
			f.Environment = map[string]string{"A": strings.Repeat("x", 3000), "B": strings.Repeat("x", 1095)}
			s.Functions["f"] = f
		}, `functions.f.environment: the variables take 4097 bytes`},
		{"iam zero", func(s *spec.Stack) { s.IAM = spec.IAM{} }, `iam.region: "" is not a region name`},
		{"iam key", func(s *spec.Stack) {
			s.IAM.AccessKeys = []spec.AccessKey{{ID: "AKIAIOSFODNN7EXAMPLE", Secret: "0123456789abcdef"}}
		}, ""},
		{"iam key without secret", func(s *spec.Stack) { s.IAM.AccessKeys = []spec.AccessKey{{ID: "AKIAIOSFODNN7EXAMPLE"}} }, `iam.accessKeys[0].secret: the secret has 0 characters`},
		{"websocket", func(s *spec.Stack) { s.APIs["a"] = validWS() }, ""},
		{"websocket without limits", func(s *spec.Stack) { a := validWS(); a.WebSocket = nil; s.APIs["a"] = a }, `apis.a.limits: no limits`},
		{"websocket zero limits", func(s *spec.Stack) { a := validWS(); a.WebSocket = &spec.WebSocketLimits{}; s.APIs["a"] = a }, `apis.a.limits.maxMessageBytes: 0 is out of range`},
		{"websocket without selection", func(s *spec.Stack) { a := validWS(); a.RouteSelectionExpression = ""; s.APIs["a"] = a }, `apis.a.routeSelectionExpression: "" is not a supported route selection expression`},
		{"websocket payload format", func(s *spec.Stack) {
			a := validWS()
			a.Routes[0].Integration.PayloadFormatVersion = "2.0"
			s.APIs["a"] = a
		}, `apis.a.routes["$default"].integration.payloadFormatVersion: only for http APIs`},
		{"websocket HTTP timeout", func(s *spec.Stack) {
			a := validWS()
			a.Routes[0].Integration.Timeout = spec.Duration(30 * time.Second)
			s.APIs["a"] = a
		}, `apis.a.routes["$default"].integration.timeout: 30s is out of range: want 50ms to 29s`},
		{"websocket routeResponse on $connect", func(s *spec.Stack) {
			a := validWS()
			a.Routes = append(a.Routes, spec.Route{Key: spec.RouteConnect, Authorization: noAuth, Integration: a.Routes[0].Integration, RouteResponse: true})
			s.APIs["a"] = a
		}, `apis.a.routes["$connect"].routeResponse: $connect routes cannot send a route response`},
		{"http with selection", func(s *spec.Stack) {
			a := s.APIs["a"]
			a.RouteSelectionExpression = spec.DefaultRouteSelectionExpression
			s.APIs["a"] = a
		}, `apis.a.routeSelectionExpression: only for websocket APIs`},
		{"http with limits", func(s *spec.Stack) { a := s.APIs["a"]; a.WebSocket = validWS().WebSocket; s.APIs["a"] = a }, `apis.a.limits: only for websocket APIs`},
		{"http with routeResponse", func(s *spec.Stack) { a := s.APIs["a"]; a.Routes[0].RouteResponse = true; s.APIs["a"] = a }, `apis.a.routes["GET /x"].routeResponse: only for websocket APIs`},
		{"controls", func(s *spec.Stack) {
			s.UsagePlans = map[string]spec.UsagePlan{"p": {Name: "p", Quota: &spec.Quota{Limit: 1, Period: spec.QuotaPeriodDay}}}
			a := s.APIs["a"]
			a.CORS = &spec.CORS{AllowOrigins: []string{"*"}}
			a.Authorizers = map[string]spec.Authorizer{"j": {Name: "j", Type: spec.AuthorizerJWT, JWT: &spec.JWTAuthorizer{Issuer: "https://i.example",
				Audiences: []string{"x"}, IdentitySource: spec.DefaultJWTIdentitySource, JWKSFile: "/keys.json", Algorithms: []string{spec.JWTAlgES384}}}}
			a.Stages["$default"] = spec.Stage{Name: "$default", Throttle: &spec.Throttle{Rate: 1}, RouteThrottles: map[string]spec.Throttle{"GET /x": {Rate: 0.1}}}
			a.Routes[0].Authorization = spec.Authorization{Type: spec.AuthJWT, Authorizer: "j", Scopes: []string{"s"}}
			a.Routes[0].APIKeyRequired = true
			s.APIs["a"] = a
		}, ""},
		{"authorization type unset", func(s *spec.Stack) { s.APIs["a"].Routes[0].Authorization.Type = "" }, `apis.a.routes["GET /x"].authorization.type: unknown authorization type "": want none, jwt, function or iam`},
		{"jwt authorizer without settings", func(s *spec.Stack) {
			a := s.APIs["a"]
			a.Authorizers = map[string]spec.Authorizer{"j": {Name: "j", Type: spec.AuthorizerJWT}}
			s.APIs["a"] = a
		}, `apis.a.authorizers.j: a jwt authorizer needs its JWT settings, and no Function settings`},
		{"jwksFile relative", func(s *spec.Stack) {
			a := s.APIs["a"]
			a.Authorizers = map[string]spec.Authorizer{"j": {Name: "j", Type: spec.AuthorizerJWT, JWT: &spec.JWTAuthorizer{Issuer: "https://i.example",
				Audiences: []string{"x"}, IdentitySource: spec.DefaultJWTIdentitySource, JWKSFile: "keys.json", Algorithms: spec.DefaultJWTAlgorithms()}}}
			s.APIs["a"] = a
		}, `apis.a.authorizers.j.jwksFile: want an absolute path, got "keys.json"`},
		{"jwt authorizer without algorithms", func(s *spec.Stack) {
			a := s.APIs["a"]
			a.Authorizers = map[string]spec.Authorizer{"j": {Name: "j", Type: spec.AuthorizerJWT, JWT: &spec.JWTAuthorizer{Issuer: "https://i.example",
				Audiences: []string{"x"}, IdentitySource: spec.DefaultJWTIdentitySource}}}
			s.APIs["a"] = a
		}, `apis.a.authorizers.j.algorithms: no algorithms; list at least one, or omit algorithms for the default RS256, RS384, RS512`},
		{"function authorizer zero timeout", func(s *spec.Stack) {
			a := s.APIs["a"]
			a.Authorizers = map[string]spec.Authorizer{"g": {Name: "g", Type: spec.AuthorizerFunction, Function: &spec.FunctionAuthorizer{Function: "f", IdentitySources: []string{"$context.routeKey"}}}}
			s.APIs["a"] = a
		}, `apis.a.authorizers.g.timeout: 0s is out of range: want 50ms to 10s`},
		{"websocket with cors", func(s *spec.Stack) { a := validWS(); a.CORS = &spec.CORS{}; s.APIs["a"] = a }, `apis.a.cors: only for http APIs`},
		{"zero stage throttle", func(s *spec.Stack) {
			s.APIs["a"].Stages["$default"] = spec.Stage{Name: "$default", Throttle: &spec.Throttle{}}
		}, `apis.a.stages["$default"].throttle.rate: 0 is out of range`},
		{"route throttle for no route", func(s *spec.Stack) {
			s.APIs["a"].Stages["$default"] = spec.Stage{Name: "$default", RouteThrottles: map[string]spec.Throttle{"POST /orders": {Rate: 1}}}
		}, `apis.a.stages["$default"].routeThrottles["POST /orders"]: no route "POST /orders" in this API; routeThrottles are keyed by route key`},
		{"usage plan name mismatch", func(s *spec.Stack) { s.UsagePlans = map[string]spec.UsagePlan{"p": {Name: "q"}} }, `usagePlans.p: Name "q" differs from the map key`},
		{"api key without plans", func(s *spec.Stack) { s.APIs["a"].Routes[0].APIKeyRequired = true }, `apis.a.routes["GET /x"].apiKeyRequired: API keys belong to usage plans`},
		{"environment NUL", func(s *spec.Stack) {
			f := s.Functions["f"]
			f.Environment = map[string]string{"A": "a\x00"}
			s.Functions["f"] = f
		}, `functions.f.environment.A: the value contains a NUL byte`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.change(s)
			err := s.Validate().Err()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("got %v, want %s…", err, tt.want)
			}
		})
	}
}

// FuzzParse checks that Parse never panics, that every error is one line with a position, and
// that whatever it accepts passes Validate.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"example.yaml", "full.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"version: 1\n",
		"version: 1\nfunctions: {f: {source: hello, timeout: 3x}}\n",
		"version: 1\nfunctions: &a {f: {<<: *a}}\n",
		"a: &a [*a]\n",
		"version: 1\napis: {w: {type: http, routes: {GET /x: {function: f}}}}\n",
		"version: 1\nfunctions:\n  f: {source: mod.wasm, environment: {A: !!str 1}}\napis: {w: {type: http, stages: {p: {variables: {a: b}}}, routes: {$default: {integration: {target: f, payloadFormatVersion: 2.0}}}}}\n",
		wsFull,
		ctlFull,
		ctlHead + "usagePlans: {p: {throttle: {rate: 1.5, burst: 2}, quota: {limit: 9, period: week}}}\napis:\n  w:\n    type: http\n    cors: {allowOrigins: ['*'], maxAge: 5}\n    authorizers: {j: {type: jwt, issuer: 'https://i.example', audiences: [a]}, g: {type: function, function: authz, identitySources: [$context.routeKey]}}\n    stages: {$default: {throttle: {rate: 1, burst: 1}, routeThrottles: {GET /x: {rate: 2, burst: 2}}}}\n    routes:\n      GET /x: {function: hello, authorization: {type: jwt, authorizer: j, scopes: [r]}, apiKeyRequired: true}\n      GET /y: {function: hello, authorization: {type: function, authorizer: g}}\n",
		"version: 1\nfunctions: {f: {source: hello}}\napis: {c: {type: websocket, routeSelectionExpression: \\$default, limits: {maxMessageBytes: 2048}, routes: {$connect: {function: f}, m: {function: f, routeResponse: true}}}}\niam: {accessKeys: [{id: AKIAIOSFODNN7EXAMPLE, secret: 0123456789abcdef}, {id: AKIAI44QH8DHBEXAMPLE, secretFromEnv: HOME}]}\n",
	} {
		f.Add([]byte(s))
	}
	dir := stackDir(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("f.yaml", data, dir)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if e.Line < 1 || e.Column < 1 || !strings.HasPrefix(err.Error(), "f.yaml:") {
				t.Fatalf("error without a position: %q", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has several lines: %q", err)
			}
			return
		}
		clearPositions(s)
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted a stack that Validate refuses: %v", err)
		}
	})
}

// TestDocExamples parses the complete stack files shown in docs/stack-file.md, so the reference
// cannot drift from the parser.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "stack-file.md"))
	if err != nil {
		t.Skipf("docs not found: %v", err)
	}
	t.Setenv("CHAT_SECRET", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	dir := stackDir(t)
	for _, p := range []string{"functions/orders", "build", "chat"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "build", "legacy.wasm"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys.json"), []byte(`{"keys":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```yaml\n")
	n := 0
	for i, b := range blocks[1:] {
		b, _, _ = strings.Cut(b, "```")
		// A block marked as showing an error is checked by the docs test of internal/app.
		if !strings.HasPrefix(b, "version: 1\n") || strings.HasSuffix(strings.TrimSpace(blocks[i]), "<!-- error -->") {
			continue
		}
		n++
		if _, err := Parse("stack-file.md block "+strconv.Itoa(i+1), []byte(b), dir); err != nil {
			t.Errorf("%v", err)
		}
	}
	if n < 4 {
		t.Errorf("found %d complete examples in the docs, want at least 4", n)
	}
}

// Stack files for the gateway control tests.
const (
	ctlHead    = "version: 1\nfunctions:\n  hello: {source: hello}\n  authz: {source: echo}\n" // lines 1-4
	helloRoute = "      GET /hello: {function: hello}\n"
	// ctlAuthorizers defines a jwt authorizer corp and a function authorizer gate (lines 8-10).
	ctlAuthorizers = "    authorizers:\n      corp: {type: jwt, issuer: https://id.example.com, audiences: [a]}\n      gate: {type: function, function: authz, identitySources: [$request.header.X]}\n"
)

// ctlWeb returns an http API web whose extra keys start at line 8, followed by routes.
func ctlWeb(extra, routes string) string {
	return ctlHead + "apis:\n  web:\n    type: http\n" + extra + "    routes:\n" + routes
}

// ctlChat returns a websocket API chat whose extra keys start at line 8, followed by routes.
func ctlChat(extra, routes string) string {
	return ctlHead + "apis:\n  chat:\n    type: websocket\n" + extra + "    routes:\n" + routes
}

// ctlPlans returns usagePlans (at line 5, a flow mapping) before an http API.
func ctlPlans(plans string) string {
	return ctlHead + "usagePlans: " + plans + "\napis:\n  web:\n    type: http\n    routes:\n" + helloRoute
}

// ctlJWT returns an http API with the jwt authorizer corp, whose further keys start at line 13.
func ctlJWT(extra string) string {
	return ctlWeb("    authorizers:\n      corp:\n        type: jwt\n        issuer: https://id.example.com\n        audiences: [api://web]\n"+extra, helloRoute)
}

// ctlFn returns an http API with the function authorizer gate, whose further keys start at line 13.
func ctlFn(extra string) string {
	return ctlWeb("    authorizers:\n      gate:\n        type: function\n        function: authz\n        identitySources: [$request.header.X]\n"+extra, helloRoute)
}

// ctlCORS returns an http API with cors (at line 8, a flow mapping).
func ctlCORS(cors string) string {
	return ctlWeb("    cors: "+cors+"\n", helloRoute)
}

type ctlCase struct{ name, yaml, want string }

func controlErrorCases() []ctlCase {
	const plan = "usagePlans: {basic: {}}\n"
	return []ctlCase{
		// usagePlans.
		{"plans not a mapping", ctlPlans("[basic]"), "gatehouse.yaml:5:13: usagePlans: want a mapping, got a list"},
		{"plan bad name", ctlPlans(`{"gold plan": {}}`), "gatehouse.yaml:5:14: usagePlans[\"gold plan\"]: \"gold plan\" is not a valid usage plan name: want 1 to 64 letters, digits, - and _"},
		{"plan unknown key", ctlPlans("{basic: {throtle: {rate: 1, burst: 1}}}"), "gatehouse.yaml:5:22: usagePlans.basic.throtle: unknown key (did you mean \"throttle\"?); known keys here: throttle, quota"},
		{"throttle rate missing", ctlPlans("{basic: {throttle: {burst: 1}}}"), "gatehouse.yaml:5:22: usagePlans.basic.throttle.rate: required: the steady rate in requests per second, more than 0 and at most 100000"},
		{"throttle rate zero", ctlPlans("{basic: {throttle: {rate: 0, burst: 1}}}"), "gatehouse.yaml:5:39: usagePlans.basic.throttle.rate: 0 is out of range: want more than 0, at most 100000 (requests per second)"},
		{"throttle rate too large", ctlPlans("{basic: {throttle: {rate: 100001, burst: 1}}}"), "gatehouse.yaml:5:39: usagePlans.basic.throttle.rate: 100001 is out of range: want more than 0, at most 100000 (requests per second)"},
		{"throttle rate string", ctlPlans("{basic: {throttle: {rate: 10/s, burst: 1}}}"), "gatehouse.yaml:5:39: usagePlans.basic.throttle.rate: want a number of requests per second, got the string \"10/s\""},
		{"throttle rate infinite", ctlPlans("{basic: {throttle: {rate: .inf, burst: 1}}}"), "gatehouse.yaml:5:39: usagePlans.basic.throttle.rate: want a finite number of requests per second, got .inf"},
		{"throttle burst missing", ctlPlans("{basic: {throttle: {rate: 1}}}"), "gatehouse.yaml:5:22: usagePlans.basic.throttle.burst: required: the most requests at once, 0 to 100000"},
		{"throttle burst negative", ctlPlans("{basic: {throttle: {rate: 1, burst: -1}}}"), "gatehouse.yaml:5:49: usagePlans.basic.throttle.burst: -1 is out of range: want 0 to 100000 (requests)"},
		{"throttle burst fraction", ctlPlans("{basic: {throttle: {rate: 1, burst: 1.5}}}"), "gatehouse.yaml:5:49: usagePlans.basic.throttle.burst: want a whole number of requests, got the number 1.5"},
		{"throttle burst too large", ctlPlans("{basic: {throttle: {rate: 1, burst: 100001}}}"), "gatehouse.yaml:5:49: usagePlans.basic.throttle.burst: 100001 is out of range: want 0 to 100000 (requests)"},
		{"quota period unknown", ctlPlans("{basic: {quota: {limit: 10, period: days}}}"), "gatehouse.yaml:5:49: usagePlans.basic.quota.period: unknown period \"days\" (did you mean \"day\"?): want day, week or month"},
		{"quota period missing", ctlPlans("{basic: {quota: {limit: 10}}}"), "gatehouse.yaml:5:22: usagePlans.basic.quota.period: required: day, week or month"},
		{"quota limit missing", ctlPlans("{basic: {quota: {period: day}}}"), "gatehouse.yaml:5:22: usagePlans.basic.quota.limit: required: the requests each key may make per period, 1 to 1000000000"},
		{"quota limit zero", ctlPlans("{basic: {quota: {limit: 0, period: day}}}"), "gatehouse.yaml:5:37: usagePlans.basic.quota.limit: 0 is out of range: want 1 to 1000000000 (requests per period)"},
		{"quota limit too large", ctlPlans("{basic: {quota: {limit: 1000000001, period: month}}}"), "gatehouse.yaml:5:37: usagePlans.basic.quota.limit: 1000000001 is out of range: want 1 to 1000000000 (requests per period)"},
		{"quota unknown key", ctlPlans("{basic: {quota: {limit: 1, period: day, offset: 2}}}"), "gatehouse.yaml:5:53: usagePlans.basic.quota.offset: unknown key; known keys here: limit, period"},

		// cors.
		{"cors on websocket", ctlChat("    cors: {allowOrigins: ['*']}\n", "      $default: {function: hello}\n"), "gatehouse.yaml:8:5: apis.chat.cors: only for http APIs: browsers make no CORS preflight requests for WebSocket connections; remove it from this websocket API"},
		{"cors unknown key", ctlCORS("{allowOrigin: ['*']}"), "gatehouse.yaml:8:12: apis.web.cors.allowOrigin: unknown key (did you mean \"allowOrigins\"?); known keys here: allowOrigins, allowMethods, allowHeaders, exposeHeaders, maxAge, allowCredentials"},
		{"cors origins not a list", ctlCORS("{allowOrigins: '*'}"), "gatehouse.yaml:8:26: apis.web.cors.allowOrigins: want a list, got the string \"*\""},
		{"cors origin number", ctlCORS("{allowOrigins: [1]}"), "gatehouse.yaml:8:27: apis.web.cors.allowOrigins[0]: want a string, got the number 1 (quote it: \"1\")"},
		{"cors origin with path", ctlCORS("{allowOrigins: ['*', 'https://example.com/']}"), "gatehouse.yaml:8:32: apis.web.cors.allowOrigins[1]: \"https://example.com/\" is not an origin: an origin has no path, not even a trailing /; want * or scheme://host[:port], such as https://example.com"},
		{"cors origin without scheme", ctlCORS("{allowOrigins: [example.com]}"), "gatehouse.yaml:8:27: apis.web.cors.allowOrigins[0]: \"example.com\" is not an origin: want * or scheme://host[:port], such as https://example.com"},
		{"cors origin upper case", ctlCORS("{allowOrigins: ['https://Example.com']}"), "gatehouse.yaml:8:27: apis.web.cors.allowOrigins[0]: \"https://Example.com\": write origins in lower case, as browsers send them (https://example.com)"},
		{"cors origin bad port", ctlCORS("{allowOrigins: ['http://localhost:0']}"), "gatehouse.yaml:8:27: apis.web.cors.allowOrigins[0]: \"http://localhost:0\" is not an origin: want * or scheme://host[:port], such as https://example.com"},
		{"cors credentials with any origin", ctlCORS("{allowOrigins: ['*'], allowCredentials: true}"), "gatehouse.yaml:8:51: apis.web.cors.allowCredentials: allowCredentials cannot be used with allowOrigins: * (browsers refuse credentials for any origin, and API Gateway refuses the pair); list the origins instead"},
		{"cors credentials not a boolean", ctlCORS("{allowCredentials: yes please}"), "gatehouse.yaml:8:30: apis.web.cors.allowCredentials: want true or false, got the string \"yes please\""},
		{"cors method lower case", ctlCORS("{allowMethods: [GET, get]}"), "gatehouse.yaml:8:32: apis.web.cors.allowMethods[1]: \"get\" is not a method (did you mean \"GET\"?): want GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or *"},
		{"cors method unknown", ctlCORS("{allowMethods: [FETCH]}"), "gatehouse.yaml:8:27: apis.web.cors.allowMethods[0]: \"FETCH\" is not a method (did you mean \"PATCH\"?): want GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or *"},
		{"cors header with space", ctlCORS("{allowHeaders: [content type]}"), "gatehouse.yaml:8:27: apis.web.cors.allowHeaders[0]: \"content type\" is not a header name: want letters, digits and !#$%&'*+-.^_`|~, or *"},
		{"cors expose header bad", ctlCORS("{exposeHeaders: ['x:y']}"), "gatehouse.yaml:8:28: apis.web.cors.exposeHeaders[0]: \"x:y\" is not a header name: want letters, digits and !#$%&'*+-.^_`|~, or *"},
		{"cors maxAge too large", ctlCORS("{maxAge: 86401}"), "gatehouse.yaml:8:20: apis.web.cors.maxAge: 86401 is out of range: want -1 to 86400 (seconds)"},
		{"cors maxAge too small", ctlCORS("{maxAge: -2}"), "gatehouse.yaml:8:20: apis.web.cors.maxAge: -2 is out of range: want -1 to 86400 (seconds)"},
		{"cors maxAge duration", ctlCORS("{maxAge: 10m}"), "gatehouse.yaml:8:20: apis.web.cors.maxAge: want a whole number of seconds, got the string \"10m\""},

		// authorizers.
		{"authorizers not a mapping", ctlWeb("    authorizers: [corp]\n", helloRoute), "gatehouse.yaml:8:18: apis.web.authorizers: want a mapping, got a list"},
		{"authorizer bad name", ctlWeb("    authorizers:\n      corp.v1: {type: jwt, issuer: https://id.example.com, audiences: [a]}\n", helloRoute), "gatehouse.yaml:9:7: apis.web.authorizers[\"corp.v1\"]: \"corp.v1\" is not a valid authorizer name: want 1 to 128 letters, digits, - and _"},
		{"authorizer type missing", ctlWeb("    authorizers:\n      corp: {issuer: https://id.example.com}\n", helloRoute), "gatehouse.yaml:9:7: apis.web.authorizers.corp.type: required: \"jwt\" or \"function\""},
		{"authorizer type unknown", ctlWeb("    authorizers:\n      corp: {type: lambda}\n", helloRoute), "gatehouse.yaml:9:20: apis.web.authorizers.corp.type: unknown authorizer type \"lambda\": want jwt or function (http APIs), token or request (rest APIs)"},
		{"authorizer type near miss", ctlWeb("    authorizers:\n      corp: {type: JWT}\n", helloRoute), "gatehouse.yaml:9:20: apis.web.authorizers.corp.type: unknown authorizer type \"JWT\" (did you mean \"jwt\"?): want jwt or function (http APIs), token or request (rest APIs)"},
		{"authorizer unknown key", ctlJWT("        audience: [x]\n"), "gatehouse.yaml:13:9: apis.web.authorizers.corp.audience: unknown key (did you mean \"audiences\"?); known keys here: type, issuer, audiences, identitySource, jwksUrl, jwksFile, algorithms, skew"},
		{"jwt key on function authorizer", ctlFn("        issuer: https://id.example.com\n"), "gatehouse.yaml:13:9: apis.web.authorizers.gate.issuer: only for jwt authorizers; this one has type: function"},
		{"function key on jwt authorizer", ctlJWT("        resultTtl: 5s\n"), "gatehouse.yaml:13:9: apis.web.authorizers.corp.resultTtl: only for function authorizers; this one has type: jwt"},
		{"jwt issuer missing", ctlWeb("    authorizers:\n      corp:\n        type: jwt\n        audiences: [a]\n", helloRoute), "gatehouse.yaml:9:7: apis.web.authorizers.corp.issuer: required: the token issuer, an https URL such as https://id.example.com"},
		{"jwt audiences missing", ctlWeb("    authorizers:\n      corp:\n        type: jwt\n        issuer: https://id.example.com\n", helloRoute), "gatehouse.yaml:9:7: apis.web.authorizers.corp.audiences: required: the audiences a token may be for, such as [api://web]"},
		{"jwt issuer http", ctlWeb("    authorizers:\n      corp: {type: jwt, issuer: http://id.example.com, audiences: [a]}\n", helloRoute), "gatehouse.yaml:9:33: apis.web.authorizers.corp.issuer: \"http://id.example.com\" is not an issuer URL: want https://HOST or https://HOST/PATH, without a query (http:// only for localhost, 127.0.0.1 and [::1])"},
		{"jwt issuer with query", ctlWeb("    authorizers:\n      corp: {type: jwt, issuer: 'https://id.example.com/?x=1', audiences: [a]}\n", helloRoute), "gatehouse.yaml:9:33: apis.web.authorizers.corp.issuer: \"https://id.example.com/?x=1\" is not an issuer URL: want https://HOST or https://HOST/PATH, without a query (http:// only for localhost, 127.0.0.1 and [::1])"},
		{"jwt issuer not a URL", ctlWeb("    authorizers:\n      corp: {type: jwt, issuer: id.example.com, audiences: [a]}\n", helloRoute), "gatehouse.yaml:9:33: apis.web.authorizers.corp.issuer: \"id.example.com\" is not an issuer URL: want https://HOST or https://HOST/PATH, without a query (http:// only for localhost, 127.0.0.1 and [::1])"},
		{"jwt audiences empty", ctlWeb("    authorizers:\n      corp: {type: jwt, issuer: https://id.example.com, audiences: []}\n", helloRoute), "gatehouse.yaml:9:68: apis.web.authorizers.corp.audiences: 0 audiences; want 1 to 50"},
		{"jwt audiences too many", ctlWeb("    authorizers:\n      corp: {type: jwt, issuer: https://id.example.com, audiences: ["+strings.Repeat("a, ", 50)+"a]}\n", helloRoute), "gatehouse.yaml:9:68: apis.web.authorizers.corp.audiences: 51 audiences; want 1 to 50"},
		{"jwt audience empty", ctlWeb("    authorizers:\n      corp: {type: jwt, issuer: https://id.example.com, audiences: [a, '']}\n", helloRoute), "gatehouse.yaml:9:72: apis.web.authorizers.corp.audiences[1]: an audience must not be empty"},
		{"jwt identitySource context", ctlJWT("        identitySource: $context.authorizer.token\n"), "gatehouse.yaml:13:25: apis.web.authorizers.corp.identitySource: \"$context.authorizer.token\" is not an identity source for a jwt authorizer: want $request.header.NAME (default $request.header.Authorization) or $request.querystring.NAME"},
		{"jwt identitySource list", ctlJWT("        identitySources: [$request.header.Authorization]\n"), "gatehouse.yaml:13:9: apis.web.authorizers.corp.identitySources: only for function authorizers; this one has type: jwt"},
		{"jwt jwksUrl and jwksFile", ctlJWT("        jwksUrl: https://id.example.com/keys\n        jwksFile: ./keys.json\n"), "gatehouse.yaml:14:9: apis.web.authorizers.corp: give either jwksUrl or jwksFile, not both"},
		{"jwt jwksUrl http", ctlJWT("        jwksUrl: http://id.example.com/keys\n"), "gatehouse.yaml:13:18: apis.web.authorizers.corp.jwksUrl: \"http://id.example.com/keys\" is not a JWKS URL: want https://HOST/PATH (http:// only for localhost, 127.0.0.1 and [::1])"},
		{"jwt jwksFile missing", ctlJWT("        jwksFile: ./nope.json\n"), "gatehouse.yaml:13:19: apis.web.authorizers.corp.jwksFile: \"./nope.json\" does not exist (looked for \"DIR/nope.json\")"},
		{"jwt jwksFile directory", ctlJWT("        jwksFile: ./hello\n"), "gatehouse.yaml:13:19: apis.web.authorizers.corp.jwksFile: \"./hello\" is not a file; want a JSON Web Key Set file, such as ./keys.json"},
		{"jwt algorithms HS256", ctlJWT("        algorithms: [RS256, HS256]\n"), "gatehouse.yaml:13:29: apis.web.authorizers.corp.algorithms[1]: \"HS256\" is never accepted: HMAC tokens are signed with a shared secret, not a published key; want RS256, RS384, RS512, ES256, ES384 or EdDSA"},
		{"jwt algorithms none", ctlJWT("        algorithms: [none]\n"), "gatehouse.yaml:13:22: apis.web.authorizers.corp.algorithms[0]: unsigned tokens (none) are never accepted; want RS256, RS384, RS512, ES256, ES384 or EdDSA"},
		{"jwt algorithms unknown", ctlJWT("        algorithms: [RS257]\n"), "gatehouse.yaml:13:22: apis.web.authorizers.corp.algorithms[0]: \"RS257\" is not a supported algorithm (did you mean \"RS256\"?); want RS256, RS384, RS512, ES256, ES384 or EdDSA"},
		{"jwt algorithms empty", ctlJWT("        algorithms: []\n"), "gatehouse.yaml:13:21: apis.web.authorizers.corp.algorithms: no algorithms; list at least one, or omit algorithms for the default RS256, RS384, RS512"},
		{"jwt skew too long", ctlJWT("        skew: 6m\n"), "gatehouse.yaml:13:15: apis.web.authorizers.corp.skew: 6m0s is out of range: want 0s to 5m"},
		{"jwt skew negative", ctlJWT("        skew: -1s\n"), "gatehouse.yaml:13:15: apis.web.authorizers.corp.skew: -1s is out of range: want 0s to 5m"},
		{"jwt skew bare number", ctlJWT("        skew: 30\n"), "gatehouse.yaml:13:15: apis.web.authorizers.corp.skew: 30 is not a duration: give a unit, e.g. \"30s\" or \"30ms\""},
		{"jwt authorizer in websocket API", ctlChat("    authorizers:\n      corp: {type: jwt, issuer: https://id.example.com, audiences: [a]}\n", "      $connect: {function: hello}\n"), "gatehouse.yaml:9:20: apis.chat.authorizers.corp.type: jwt authorizers are only for http APIs: a websocket API authorizes $connect with a function authorizer or iam"},
		{"function authorizer unknown function", ctlWeb("    authorizers:\n      gate: {type: function, function: authzz, identitySources: [$request.header.X]}\n", helloRoute), "gatehouse.yaml:9:40: apis.web.authorizers.gate.function: no function named \"authzz\" in functions (defined: authz, hello)"},
		{"function authorizer bad qualifier", ctlWeb("    authorizers:\n      gate: {type: function, function: 'authz:01', identitySources: [$request.header.X]}\n", helloRoute), "gatehouse.yaml:9:40: apis.web.authorizers.gate.function: \"01\" is not a version or alias of authz: want $LATEST, a version number (3) or an alias name (1 to 128 letters, digits, - and _, not all digits)"},
		{"function authorizer function missing", ctlWeb("    authorizers:\n      gate: {type: function, identitySources: [$request.header.X]}\n", helloRoute), "gatehouse.yaml:9:7: apis.web.authorizers.gate.function: required: the function that decides, a function of this stack"},
		{"identitySources missing", ctlWeb("    authorizers:\n      gate: {type: function, function: authz}\n", helloRoute), "gatehouse.yaml:9:7: apis.web.authorizers.gate.identitySources: required: the request values the decision depends on, such as [$request.header.Authorization]"},
		{"identitySources empty", ctlWeb("    authorizers:\n      gate: {type: function, function: authz, identitySources: []}\n", helloRoute), "gatehouse.yaml:9:64: apis.web.authorizers.gate.identitySources: 0 identity sources; want 1 to 10"},
		{"identitySources too many", ctlWeb("    authorizers:\n      gate: {type: function, function: authz, identitySources: ["+strings.Repeat("$request.header.X, ", 10)+"$request.header.X]}\n", helloRoute), "gatehouse.yaml:9:64: apis.web.authorizers.gate.identitySources: 11 identity sources; want 1 to 10"},
		{"identity source misspelt", ctlWeb("    authorizers:\n      gate:\n        type: function\n        function: authz\n        identitySources: [$request.header.X, $request.heder.X]\n", helloRoute), "gatehouse.yaml:12:46: apis.web.authorizers.gate.identitySources[1]: \"$request.heder.X\" is not an identity source: want $request.header.NAME, $request.querystring.NAME, $context.NAME or $stageVariables.NAME"},
		{"identity source websocket form", ctlChat("    authorizers:\n      gate: {type: function, function: authz, identitySources: [route.request.header.Auth]}\n", "      $connect: {function: hello}\n"), "gatehouse.yaml:9:65: apis.chat.authorizers.gate.identitySources[0]: \"route.request.header.Auth\" is API Gateway's websocket form; Gatehouse writes identity sources the same way in every API: $request.header.Auth"},
		{"identity source bad stage variable", ctlWeb("    authorizers:\n      gate: {type: function, function: authz, identitySources: [$stageVariables.a-b]}\n", helloRoute), "gatehouse.yaml:9:65: apis.web.authorizers.gate.identitySources[0]: \"$stageVariables.a-b\" is not an identity source: want $request.header.NAME, $request.querystring.NAME, $context.NAME or $stageVariables.NAME"},
		{"identity source empty header", ctlWeb("    authorizers:\n      gate: {type: function, function: authz, identitySources: [$request.header.]}\n", helloRoute), "gatehouse.yaml:9:65: apis.web.authorizers.gate.identitySources[0]: \"$request.header.\" is not an identity source: want $request.header.NAME, $request.querystring.NAME, $context.NAME or $stageVariables.NAME"},
		{"resultTtl too long", ctlFn("        resultTtl: 3601s\n"), "gatehouse.yaml:13:20: apis.web.authorizers.gate.resultTtl: 1h0m1s is out of range: want 0s (no caching) to 1h"},
		{"authorizer timeout too long", ctlFn("        timeout: 11s\n"), "gatehouse.yaml:13:18: apis.web.authorizers.gate.timeout: 11s is out of range: want 50ms to 10s"},
		{"authorizer timeout too short", ctlFn("        timeout: 10ms\n"), "gatehouse.yaml:13:18: apis.web.authorizers.gate.timeout: 10ms is out of range: want 50ms to 10s"},
		{"simpleResponses not a boolean", ctlFn("        simpleResponses: 'yes'\n"), "gatehouse.yaml:13:26: apis.web.authorizers.gate.simpleResponses: want true or false, got the string \"yes\""},

		// stages.
		{"stage throttle unknown key", ctlWeb("    stages:\n      $default: {throttle: {rate: 1, burts: 2}}\n", helloRoute), "gatehouse.yaml:9:38: apis.web.stages[\"$default\"].throttle.burts: unknown key (did you mean \"burst\"?); known keys here: rate, burst"},
		{"stage throttle burst too large", ctlWeb("    stages:\n      $default: {throttle: {rate: 1, burst: 100001}}\n", helloRoute), "gatehouse.yaml:9:45: apis.web.stages[\"$default\"].throttle.burst: 100001 is out of range: want 0 to 100000 (requests)"},
		{"routeThrottles unknown route", ctlWeb("    stages:\n      $default:\n        routeThrottles:\n          GET /helo: {rate: 1, burst: 1}\n", helloRoute), "gatehouse.yaml:11:11: apis.web.stages[\"$default\"].routeThrottles[\"GET /helo\"]: no route \"GET /helo\" in this API (did you mean \"GET /hello\"?); routeThrottles are keyed by route key"},
		{"routeThrottles not a throttle", ctlWeb("    stages:\n      $default:\n        routeThrottles:\n          GET /hello: 5\n", helloRoute), "gatehouse.yaml:11:23: apis.web.stages[\"$default\"].routeThrottles[\"GET /hello\"]: want a mapping, got the number 5"},
		{"routeThrottles rate too large", ctlWeb("    stages:\n      prod:\n        routeThrottles:\n          GET /hello: {rate: 100000.5, burst: 1}\n", helloRoute), "gatehouse.yaml:11:30: apis.web.stages.prod.routeThrottles[\"GET /hello\"].rate: 100000.5 is out of range: want more than 0, at most 100000 (requests per second)"},

		// route authorization and API keys.
		{"authorization unknown key", ctlWeb(ctlAuthorizers, "      GET /hello:\n        function: hello\n        authorization: {type: jwt, authorizer: corp, scope: [read]}\n"), "gatehouse.yaml:14:54: apis.web.routes[\"GET /hello\"].authorization.scope: unknown key (did you mean \"scopes\"?); known keys here: type, authorizer, scopes"},
		{"authorization type unknown", ctlWeb(ctlAuthorizers, "      GET /hello:\n        function: hello\n        authorization: {type: JWT, authorizer: corp}\n"), "gatehouse.yaml:14:31: apis.web.routes[\"GET /hello\"].authorization.type: unknown authorization type \"JWT\" (did you mean \"jwt\"?): want none, jwt, function or iam"},
		{"authorization type cognito", ctlWeb(ctlAuthorizers, "      GET /hello:\n        function: hello\n        authorization: {type: cognito}\n"), "gatehouse.yaml:14:31: apis.web.routes[\"GET /hello\"].authorization.type: unknown authorization type \"cognito\": want none, jwt, function or iam"},
		{"authorization jwt without authorizer", ctlWeb(ctlAuthorizers, "      GET /hello:\n        function: hello\n        authorization: {type: jwt}\n"), "gatehouse.yaml:14:9: apis.web.routes[\"GET /hello\"].authorization.authorizer: required: the name of a jwt authorizer (this API's jwt authorizers: corp)"},
		{"authorization unknown authorizer", ctlWeb(ctlAuthorizers, "      GET /hello:\n        function: hello\n        authorization: {type: jwt, authorizer: crop}\n"), "gatehouse.yaml:14:48: apis.web.routes[\"GET /hello\"].authorization.authorizer: no authorizer named \"crop\" in apis.web.authorizers (did you mean \"corp\"?)"},
		{"authorization without authorizers", ctlWeb("", "      GET /hello:\n        function: hello\n        authorization: {type: function, authorizer: gate}\n"), "gatehouse.yaml:11:53: apis.web.routes[\"GET /hello\"].authorization.authorizer: no authorizer named \"gate\" in apis.web.authorizers (this API has no function authorizer)"},
		{"authorization type mismatch", ctlWeb(ctlAuthorizers, "      GET /hello:\n        function: hello\n        authorization: {type: function, authorizer: corp}\n"), "gatehouse.yaml:14:53: apis.web.routes[\"GET /hello\"].authorization.authorizer: the authorizer corp has type jwt; authorization type function needs a function authorizer (this API's function authorizers: gate)"},
		{"authorization scopes on function", ctlWeb(ctlAuthorizers, "      GET /hello:\n        function: hello\n        authorization: {type: function, authorizer: gate, scopes: [read]}\n"), "gatehouse.yaml:14:59: apis.web.routes[\"GET /hello\"].authorization.scopes: scopes are only for type jwt; this route has type function"},
		{"authorization too many scopes", ctlWeb(ctlAuthorizers, "      GET /hello:\n        function: hello\n        authorization: {type: jwt, authorizer: corp, scopes: [a, b, c, d, e, f, g, h, i, j, k]}\n"), "gatehouse.yaml:14:62: apis.web.routes[\"GET /hello\"].authorization.scopes: 11 scopes; at most 10"},
		{"authorization scope with space", ctlWeb(ctlAuthorizers, "      GET /hello:\n        function: hello\n        authorization: {type: jwt, authorizer: corp, scopes: [read, 'read write']}\n"), "gatehouse.yaml:14:69: apis.web.routes[\"GET /hello\"].authorization.scopes[1]: \"read write\" is not a scope: want a non-empty string without spaces"},
		{"authorization authorizer on none", ctlWeb(ctlAuthorizers, "      GET /hello:\n        function: hello\n        authorization: {authorizer: corp}\n"), "gatehouse.yaml:14:25: apis.web.routes[\"GET /hello\"].authorization.authorizer: only for type jwt or function; a route with type none has no authorizer"},
		{"authorization authorizer on iam", ctlWeb(ctlAuthorizers, "      GET /hello:\n        function: hello\n        authorization: {type: iam, authorizer: gate}\n"), "gatehouse.yaml:14:36: apis.web.routes[\"GET /hello\"].authorization.authorizer: only for type jwt or function; a route with type iam has no authorizer"},
		{"authorization not a mapping", ctlWeb(ctlAuthorizers, "      GET /hello:\n        function: hello\n        authorization: jwt\n"), "gatehouse.yaml:14:24: apis.web.routes[\"GET /hello\"].authorization: want a mapping, got the string \"jwt\""},
		{"websocket authorization on a message route", ctlChat("", "      $connect: {function: hello}\n      sendmessage:\n        function: hello\n        authorization: {type: iam}\n"), "gatehouse.yaml:12:9: apis.chat.routes.sendmessage.authorization: only on the $connect route: a websocket API authorizes a client once, when it connects"},
		{"websocket jwt authorization", ctlChat("    authorizers:\n      gate: {type: function, function: authz, identitySources: [$request.header.X]}\n", "      $connect:\n        function: hello\n        authorization: {type: jwt, authorizer: gate}\n"), "gatehouse.yaml:13:31: apis.chat.routes[\"$connect\"].authorization.type: jwt authorization is only for http APIs: a websocket API authorizes $connect with type function or iam"},
		{"apiKeyRequired without usage plans", ctlWeb("", "      GET /hello: {function: hello, apiKeyRequired: true}\n"), "gatehouse.yaml:9:53: apis.web.routes[\"GET /hello\"].apiKeyRequired: API keys belong to usage plans, and the stack has none: add a top-level usagePlans section, then create keys with gatehouse keys create --plan NAME"},
		{"apiKeyRequired not a boolean", ctlWeb("", "      GET /hello: {function: hello, apiKeyRequired: 1}\n"), "gatehouse.yaml:9:53: apis.web.routes[\"GET /hello\"].apiKeyRequired: want true or false, got the number 1"},
		{"websocket apiKeyRequired on $default", ctlHead + plan + ctlChat("", "      $connect: {function: hello, apiKeyRequired: true}\n      $default: {function: hello, apiKeyRequired: true}\n")[len(ctlHead):], "gatehouse.yaml:11:51: apis.chat.routes[\"$default\"].apiKeyRequired: only on the $connect route: a websocket API checks the API key once, when a client connects"},
		{"unknown top-level key near usagePlans", ctlHead + "usagePlan: {}\n", "gatehouse.yaml:5:1: usagePlan: unknown key (did you mean \"usagePlans\"?); known keys here: version, name, functions, apis, iam, usagePlans, domains"},
	}
}

// TestParseControlErrors checks each problem with the gateway controls: the whole message, with
// its position and key path.
func TestParseControlErrors(t *testing.T) {
	for _, tt := range controlErrorCases() {
		t.Run(tt.name, func(t *testing.T) {
			dir := stackDir(t)
			if err := os.WriteFile(filepath.Join(dir, "keys.json"), []byte(`{"keys":[]}`), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Parse("gatehouse.yaml", []byte(tt.yaml), dir)
			if err == nil {
				t.Fatalf("Parse succeeded (%+v); want %s", s, tt.want)
			}
			if want := strings.ReplaceAll(tt.want, "DIR", dir); err.Error() != want {
				t.Errorf("error\n got %s\nwant %s", err, want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 || e.Column < 1 {
				t.Errorf("error %#v: want an *Error with a position", err)
			}
		})
	}
}

// ctlFull is a stack with every gateway control key.
const ctlFull = `version: 1
functions:
  hello: {source: hello}
  authz: {source: echo}
usagePlans:
  basic:
    throttle: {rate: 10, burst: 20}
    quota: {limit: 1000, period: day}
  gold:
    throttle: {rate: 0.5, burst: 0}
    quota: {limit: 1000000000, period: month}
  free:
apis:
  web:
    type: http
    cors:
      allowOrigins: ["https://example.com", "http://localhost:3000"]
      allowMethods: [GET, POST, "*"]
      allowHeaders: [content-type, authorization]
      exposeHeaders: [x-request-id]
      maxAge: -1
      allowCredentials: true
    authorizers:
      corp:
        type: jwt
        issuer: https://id.example.com
        audiences: [api://web, web-client]
        identitySource: $request.querystring.access_token
        jwksUrl: https://id.example.com/keys?v=2
        algorithms: [RS256, ES256, EdDSA]
        skew: 30s
      local:
        type: jwt
        issuer: http://127.0.0.1:8080/realms/test
        audiences: [a]
        jwksFile: ./keys.json
      gate:
        type: function
        function: authz:live
        identitySources: [$request.header.X-Token, $request.querystring.t, $context.identity.sourceIp, $stageVariables.tenant]
        resultTtl: 300s
        simpleResponses: false
        timeout: 50ms
    stages:
      $default:
        throttle: {rate: 100, burst: 200}
        routeThrottles:
          "GET /hello": {rate: 5, burst: 5}
          $default: {rate: 100000, burst: 100000}
      beta:
        variables: {tenant: beta}
    routes:
      GET /hello:
        function: hello
        authorization: {type: jwt, authorizer: corp, scopes: [read, "orders:write"]}
        apiKeyRequired: true
      POST /gate:
        function: hello
        authorization: {type: function, authorizer: gate}
      GET /signed:
        function: hello
        authorization: {type: iam}
      $default:
        function: hello
        authorization: {type: none}
        apiKeyRequired: false
  chat:
    type: websocket
    mount: /chat
    authorizers:
      gate:
        type: function
        function: authz
        identitySources: [$request.querystring.token]
    stages:
      $default:
        routeThrottles: {$connect: {rate: 1, burst: 1}}
    routes:
      $connect:
        function: hello
        authorization: {type: function, authorizer: gate}
        apiKeyRequired: true
      $default: {function: hello}
`

func TestParseGatewayControls(t *testing.T) {
	dir := stackDir(t)
	if err := os.WriteFile(filepath.Join(dir, "keys.json"), []byte(`{"keys":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Parse("gatehouse.yaml", []byte(ctlFull), dir)
	if err != nil {
		t.Fatal(err)
	}
	clearPositions(s)
	wantPlans := map[string]spec.UsagePlan{
		"basic": {Name: "basic", Throttle: &spec.Throttle{Rate: 10, Burst: 20}, Quota: &spec.Quota{Limit: 1000, Period: spec.QuotaPeriodDay}},
		"gold":  {Name: "gold", Throttle: &spec.Throttle{Rate: 0.5, Burst: 0}, Quota: &spec.Quota{Limit: spec.MaxQuotaLimit, Period: spec.QuotaPeriodMonth}},
		"free":  {Name: "free"},
	}
	if !reflect.DeepEqual(s.UsagePlans, wantPlans) {
		t.Errorf("usagePlans:\n got %+v\nwant %+v", s.UsagePlans, wantPlans)
	}

	web := s.APIs["web"]
	maxAge := -1
	wantCORS := &spec.CORS{
		AllowOrigins:     []string{"https://example.com", "http://localhost:3000"},
		AllowMethods:     []string{"GET", "POST", "*"},
		AllowHeaders:     []string{"content-type", "authorization"},
		ExposeHeaders:    []string{"x-request-id"},
		MaxAge:           &maxAge,
		AllowCredentials: true,
	}
	if !reflect.DeepEqual(web.CORS, wantCORS) {
		t.Errorf("cors:\n got %+v\nwant %+v", web.CORS, wantCORS)
	}
	wantAuthorizers := map[string]spec.Authorizer{
		"corp": {Name: "corp", Type: spec.AuthorizerJWT, JWT: &spec.JWTAuthorizer{
			Issuer:         "https://id.example.com",
			Audiences:      []string{"api://web", "web-client"},
			IdentitySource: "$request.querystring.access_token",
			JWKSURL:        "https://id.example.com/keys?v=2",
			Algorithms:     []string{spec.JWTAlgRS256, spec.JWTAlgES256, spec.JWTAlgEdDSA},
			Skew:           spec.Duration(30 * time.Second),
		}},
		"local": {Name: "local", Type: spec.AuthorizerJWT, JWT: &spec.JWTAuthorizer{
			Issuer:         "http://127.0.0.1:8080/realms/test",
			Audiences:      []string{"a"},
			IdentitySource: spec.DefaultJWTIdentitySource,
			JWKSFile:       filepath.Join(dir, "keys.json"),
			Algorithms:     spec.DefaultJWTAlgorithms(),
		}},
		"gate": {Name: "gate", Type: spec.AuthorizerFunction, Function: &spec.FunctionAuthorizer{
			Function:        "authz:live",
			IdentitySources: []string{"$request.header.X-Token", "$request.querystring.t", "$context.identity.sourceIp", "$stageVariables.tenant"},
			ResultTTL:       spec.Duration(300 * time.Second),
			SimpleResponses: false,
			Timeout:         spec.Duration(50 * time.Millisecond),
		}},
	}
	for name, want := range wantAuthorizers {
		got := web.Authorizers[name]
		if !reflect.DeepEqual(got, want) {
			t.Errorf("authorizer %s:\n got %+v (%+v %+v)\nwant %+v (%+v %+v)", name, got, got.JWT, got.Function, want, want.JWT, want.Function)
		}
	}
	if len(web.Authorizers) != len(wantAuthorizers) {
		t.Errorf("authorizers = %+v", web.Authorizers)
	}
	wantStages := map[string]spec.Stage{
		"$default": {Name: "$default", Variables: map[string]string{}, Throttle: &spec.Throttle{Rate: 100, Burst: 200},
			RouteThrottles: map[string]spec.Throttle{"GET /hello": {Rate: 5, Burst: 5}, "$default": {Rate: spec.MaxThrottleRate, Burst: spec.MaxThrottleBurst}}},
		"beta": {Name: "beta", Variables: map[string]string{"tenant": "beta"}},
	}
	if !reflect.DeepEqual(web.Stages, wantStages) {
		t.Errorf("stages:\n got %+v\nwant %+v", web.Stages, wantStages)
	}
	type control struct {
		auth   spec.Authorization
		apiKey bool
	}
	wantRoutes := map[string]control{
		"GET /hello":  {spec.Authorization{Type: spec.AuthJWT, Authorizer: "corp", Scopes: []string{"read", "orders:write"}}, true},
		"POST /gate":  {spec.Authorization{Type: spec.AuthFunction, Authorizer: "gate"}, false},
		"GET /signed": {spec.Authorization{Type: spec.AuthIAM}, false},
		"$default":    {spec.Authorization{Type: spec.AuthNone}, false},
	}
	for _, r := range web.Routes {
		if got := (control{r.Authorization, r.APIKeyRequired}); !reflect.DeepEqual(got, wantRoutes[r.Key]) {
			t.Errorf("route %s: got %+v, want %+v", r.Key, got, wantRoutes[r.Key])
		}
	}

	chat := s.APIs["chat"]
	wantGate := spec.Authorizer{Name: "gate", Type: spec.AuthorizerFunction, Function: &spec.FunctionAuthorizer{Function: "authz",
		IdentitySources: []string{"$request.querystring.token"}, ResultTTL: spec.Duration(spec.DefaultAuthorizerResultTTL),
		SimpleResponses: spec.DefaultSimpleResponses, Timeout: spec.Duration(spec.DefaultAuthorizerTimeout)}}
	if got := chat.Authorizers["gate"]; !reflect.DeepEqual(got, wantGate) || len(chat.Authorizers) != 1 {
		t.Errorf("chat authorizers = %+v, gate %+v", chat.Authorizers, got.Function)
	}
	if chat.CORS != nil {
		t.Errorf("chat cors = %+v", chat.CORS)
	}
	if got := chat.Stages["$default"].RouteThrottles; !reflect.DeepEqual(got, map[string]spec.Throttle{"$connect": {Rate: 1, Burst: 1}}) {
		t.Errorf("chat routeThrottles = %+v", got)
	}
	if c := chat.Routes[0]; !reflect.DeepEqual(c.Authorization, spec.Authorization{Type: spec.AuthFunction, Authorizer: "gate"}) || !c.APIKeyRequired {
		t.Errorf("$connect = %+v", c)
	}
	if d := chat.Routes[1]; !reflect.DeepEqual(d.Authorization, noAuth) || d.APIKeyRequired {
		t.Errorf("$default = %+v", d)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// TestParseControlDefaults checks the defaults of the gateway controls and the forms their values
// may take.
func TestParseControlDefaults(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, s *spec.Stack)
	}{
		{
			name: "none",
			yaml: ctlWeb("", helloRoute),
			check: func(t *testing.T, s *spec.Stack) {
				web := s.APIs["web"]
				if s.UsagePlans != nil || web.CORS != nil || web.Authorizers != nil {
					t.Errorf("plans %v, cors %v, authorizers %v; want nil", s.UsagePlans, web.CORS, web.Authorizers)
				}
				if st := web.Stages[spec.DefaultStage]; st.Throttle != nil || st.RouteThrottles != nil {
					t.Errorf("stage = %+v", st)
				}
				if r := web.Routes[0]; !reflect.DeepEqual(r.Authorization, spec.Authorization{Type: spec.AuthNone}) || r.APIKeyRequired {
					t.Errorf("route = %+v", r)
				}
			},
		},
		{
			name: "empty sections",
			yaml: ctlHead + "usagePlans: {}\napis:\n  web:\n    type: http\n    cors: {}\n    authorizers: {}\n    stages:\n      $default: {routeThrottles: {}}\n    routes:\n      GET /hello: {function: hello, authorization: {}}\n",
			check: func(t *testing.T, s *spec.Stack) {
				web := s.APIs["web"]
				if s.UsagePlans != nil || web.Authorizers != nil || web.Stages[spec.DefaultStage].RouteThrottles != nil {
					t.Errorf("plans %v, authorizers %v, stage %+v; want nil", s.UsagePlans, web.Authorizers, web.Stages[spec.DefaultStage])
				}
				if !reflect.DeepEqual(web.CORS, &spec.CORS{}) {
					t.Errorf("cors = %+v, want an empty configuration", web.CORS)
				}
				if a := web.Routes[0].Authorization; !reflect.DeepEqual(a, noAuth) {
					t.Errorf("authorization = %+v", a)
				}
			},
		},
		{
			name: "empty cors lists are nil",
			yaml: ctlCORS("{allowOrigins: [], allowMethods: [], allowHeaders: [], exposeHeaders: [], maxAge: 0}"),
			check: func(t *testing.T, s *spec.Stack) {
				zero := 0
				if c := s.APIs["web"].CORS; !reflect.DeepEqual(c, &spec.CORS{MaxAge: &zero}) {
					t.Errorf("cors = %+v", c)
				}
			},
		},
		{
			name: "jwt defaults",
			yaml: ctlJWT(""),
			check: func(t *testing.T, s *spec.Stack) {
				want := &spec.JWTAuthorizer{Issuer: "https://id.example.com", Audiences: []string{"api://web"},
					IdentitySource: spec.DefaultJWTIdentitySource, Algorithms: []string{"RS256", "RS384", "RS512"}, Skew: 0}
				if got := s.APIs["web"].Authorizers["corp"]; got.Function != nil || !reflect.DeepEqual(got.JWT, want) {
					t.Errorf("corp = %+v, jwt %+v", got, got.JWT)
				}
				if spec.DefaultJWTIdentitySource != "$request.header.Authorization" {
					t.Error("the default identity source differs from API Gateway's")
				}
			},
		},
		{
			name: "function authorizer defaults",
			yaml: ctlFn(""),
			check: func(t *testing.T, s *spec.Stack) {
				want := &spec.FunctionAuthorizer{Function: "authz", IdentitySources: []string{"$request.header.X"},
					ResultTTL: 0, SimpleResponses: true, Timeout: spec.Duration(10 * time.Second)}
				if got := s.APIs["web"].Authorizers["gate"]; got.JWT != nil || !reflect.DeepEqual(got.Function, want) {
					t.Errorf("gate = %+v, function %+v", got, got.Function)
				}
			},
		},
		{
			name: "limits accepted",
			yaml: ctlHead + "usagePlans: {p: {throttle: {rate: 100000, burst: 100000}, quota: {limit: 1, period: week}}}\n" +
				ctlWeb("    cors: {maxAge: 86400}\n    authorizers:\n      corp: {type: jwt, issuer: 'http://[::1]:9000', audiences: ["+strings.Repeat("a, ", 49)+"a], skew: 5m, algorithms: [RS256, RS384, RS512, ES256, ES384, EdDSA]}\n      gate: {type: function, function: 'authz:$LATEST', identitySources: ["+strings.Repeat("$request.header.X, ", 9)+"$request.header.X], resultTtl: 1h, timeout: 10s}\n",
					"      GET /hello: {function: hello, authorization: {type: jwt, authorizer: corp, scopes: [a, b, c, d, e, f, g, h, i, j]}}\n")[len(ctlHead):],
			check: func(t *testing.T, s *spec.Stack) {
				p := s.UsagePlans["p"]
				if *p.Throttle != (spec.Throttle{Rate: spec.MaxThrottleRate, Burst: spec.MaxThrottleBurst}) || *p.Quota != (spec.Quota{Limit: 1, Period: spec.QuotaPeriodWeek}) {
					t.Errorf("plan = %+v %+v", p.Throttle, p.Quota)
				}
				web := s.APIs["web"]
				if j := web.Authorizers["corp"].JWT; len(j.Audiences) != spec.MaxJWTAudiences || j.Skew.D() != spec.MaxJWTSkew || len(j.Algorithms) != 6 {
					t.Errorf("corp = %+v", j)
				}
				if f := web.Authorizers["gate"].Function; len(f.IdentitySources) != spec.MaxIdentitySources || f.ResultTTL.D() != spec.MaxAuthorizerResultTTL || f.Timeout.D() != spec.MaxAuthorizerTimeout {
					t.Errorf("gate = %+v", f)
				}
				if n := len(web.Routes[0].Authorization.Scopes); n != spec.MaxAuthorizationScopes {
					t.Errorf("%d scopes", n)
				}
			},
		},
		{
			name: "iam routes without access keys in the file",
			yaml: ctlWeb("", "      GET /hello: {function: hello, authorization: {type: iam}}\n"),
			check: func(t *testing.T, s *spec.Stack) {
				if a := s.APIs["web"].Routes[0].Authorization; a.Type != spec.AuthIAM || len(s.IAM.AccessKeys) != 0 {
					t.Errorf("authorization = %+v, keys %v", a, s.IAM.AccessKeys)
				}
			},
		},
		{
			name: "websocket $connect with iam and an API key",
			yaml: ctlHead + "usagePlans: {free: }\n" + ctlChat("", "      $connect: {function: hello, authorization: {type: iam}, apiKeyRequired: true}\n      $default: {function: hello, authorization: {type: none}, apiKeyRequired: false}\n")[len(ctlHead):],
			check: func(t *testing.T, s *spec.Stack) {
				c := s.APIs["chat"].Routes[0]
				if c.Authorization.Type != spec.AuthIAM || !c.APIKeyRequired {
					t.Errorf("$connect = %+v", c)
				}
			},
		},
		{
			name: "throttles through aliases",
			yaml: ctlHead + "usagePlans:\n  a: {throttle: &t {rate: 2, burst: 3}}\n" + ctlWeb("    stages:\n      $default: {throttle: *t, routeThrottles: {GET /hello: {<<: *t, burst: 9}}}\n", helloRoute)[len(ctlHead):],
			check: func(t *testing.T, s *spec.Stack) {
				st := s.APIs["web"].Stages[spec.DefaultStage]
				if *st.Throttle != (spec.Throttle{Rate: 2, Burst: 3}) || st.RouteThrottles["GET /hello"] != (spec.Throttle{Rate: 2, Burst: 9}) {
					t.Errorf("stage = %+v %+v", st.Throttle, st.RouteThrottles)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := stackDir(t)
			s, err := Parse("gatehouse.yaml", []byte(tt.yaml), dir)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			clearPositions(s)
			tt.check(t, s)
			if err := s.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// clearPositions zeroes what the comparisons above do not spell out: the positions of functions and
// the columns of routes (their lines are compared). TestStackErrorsAfterParsingHavePositions in
// internal/app checks positions where they are used.
func clearPositions(s *spec.Stack) {
	if s == nil {
		return
	}
	for name, f := range s.Functions {
		f.Line, f.Column = 0, 0
		s.Functions[name] = f
	}
	for name, a := range s.APIs {
		for i := range a.Routes {
			a.Routes[i].Column = 0
		}
		s.APIs[name] = a
	}
}
