package stackfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
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

func TestLoadExample(t *testing.T) {
	dir := stackDir(t)
	path := copyToDir(t, "example.yaml", dir)
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Stack{
		Version: 1,
		Name:    "samples",
		Dir:     dir,
		File:    path,
		Functions: map[string]Function{
			"hello": {
				Name:        "hello",
				Source:      filepath.Join(dir, "hello"),
				Kind:        SourceGo,
				MemoryMB:    128,
				Timeout:     3 * time.Second,
				IdleTimeout: DefaultIdleTimeout,
				Environment: map[string]string{},
			},
			"echo": {
				Name:           "echo",
				Source:         filepath.Join(dir, "echo"),
				Kind:           SourceGo,
				MemoryMB:       256,
				Timeout:        5 * time.Second,
				Environment:    map[string]string{"GREETING": "hi"},
				MaxConcurrency: 10,
				MinWarm:        1,
				IdleTimeout:    DefaultIdleTimeout,
			},
		},
		APIs: map[string]API{
			"web": {
				Name:   "web",
				Type:   "http",
				Mount:  "/",
				Host:   "",
				Stages: map[string]Stage{"$default": {Name: "$default", Variables: map[string]string{}}},
				Routes: []Route{
					{Key: "GET /hello", Line: 17, Integration: Integration{
						Type: "function", Target: "hello", PayloadFormatVersion: "2.0", Timeout: 30 * time.Second}},
					{Key: "ANY /echo/{proxy+}", Line: 19, Integration: Integration{
						Type: "function", Target: "echo", PayloadFormatVersion: "2.0", Timeout: 10 * time.Second}},
				},
			},
		},
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
	env := map[string]string{"PORT": "08080", "DEBUG": "true", "EMPTY": ""}
	wantFuncs := map[string]Function{
		"base": {Name: "base", Source: filepath.Join(dir, "hello"), Kind: SourceGo, MemoryMB: 512,
			Timeout: 500 * time.Millisecond, Environment: env, IdleTimeout: DefaultIdleTimeout},
		"module": {Name: "module", Source: filepath.Join(dir, "mod.wasm"), Kind: SourceWasm, MemoryMB: 512,
			Timeout: 500 * time.Millisecond, Environment: env, MaxConcurrency: 4, MinWarm: 4, IdleTimeout: DefaultIdleTimeout},
	}
	if !reflect.DeepEqual(s.Functions, wantFuncs) {
		t.Errorf("functions:\n got %+v\nwant %+v", s.Functions, wantFuncs)
	}
	fn := func(target string, timeout time.Duration) Integration {
		return Integration{Type: "function", Target: target, PayloadFormatVersion: "2.0", Timeout: timeout}
	}
	wantAPIs := map[string]API{
		"shop": {Name: "shop", Type: "http", Mount: "/shop/v1", Host: "api.example.com",
			Stages: map[string]Stage{
				"prod":     {Name: "prod", Variables: map[string]string{"backend": "https://b.example/x?y=1", "lambdaAlias": "live"}},
				"$default": {Name: "$default", Variables: map[string]string{}},
			},
			Routes: []Route{
				{Key: "$default", Line: 28, Integration: fn("base", 30*time.Second)},
				{Key: "POST /orders", Line: 30, Integration: fn("module", 10*time.Second)},
				{Key: "GET /orders/{id}", Line: 36, Integration: fn("base", 50*time.Millisecond)},
			}},
		"admin": {Name: "admin", Type: "http", Mount: "/admin",
			Stages: map[string]Stage{"$default": {Name: "$default", Variables: map[string]string{}}},
			Routes: []Route{{Key: "ANY /{proxy+}", Line: 41, Integration: fn("module", 30*time.Second)}}},
	}
	if !reflect.DeepEqual(s.APIs, wantAPIs) {
		t.Errorf("apis:\n got %+v\nwant %+v", s.APIs, wantAPIs)
	}
	if s.Name != "shop-2" {
		t.Errorf("name = %q", s.Name)
	}
}

// TestParseValues checks decoded values, defaults and the forms a value may take.
func TestParseValues(t *testing.T) {
	const head = "version: 1\nfunctions:\n  hello: {source: hello}\n"
	const api = "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: hello}\n"
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, s *Stack, dir string)
	}{
		{
			name: "defaults",
			yaml: head + api,
			check: func(t *testing.T, s *Stack, dir string) {
				want := &Stack{Version: 1, Name: "default", Dir: dir, File: "gatehouse.yaml",
					Functions: map[string]Function{"hello": {Name: "hello", Source: filepath.Join(dir, "hello"),
						Kind: SourceGo, MemoryMB: DefaultMemoryMB, Timeout: DefaultTimeout, IdleTimeout: DefaultIdleTimeout, Environment: map[string]string{}}},
					APIs: map[string]API{"web": {Name: "web", Type: "http", Mount: "/",
						Stages: map[string]Stage{"$default": {Name: "$default", Variables: map[string]string{}}},
						Routes: []Route{{Key: "GET /x", Line: 8, Integration: Integration{Type: "function", Target: "hello",
							PayloadFormatVersion: "2.0", Timeout: DefaultIntegrationTimeout}}}}},
				}
				if !reflect.DeepEqual(s, want) {
					t.Errorf("\n got %+v\nwant %+v", s, want)
				}
			},
		},
		{
			name: "wasm source",
			yaml: "version: 1\nfunctions:\n  hello: {source: ./sub/../mod.wasm}\n" + api,
			check: func(t *testing.T, s *Stack, dir string) {
				f := s.Functions["hello"]
				if f.Kind != SourceWasm || f.Source != filepath.Join(dir, "mod.wasm") {
					t.Errorf("Kind, Source = %v, %q", f.Kind, f.Source)
				}
			},
		},
		{
			name: "absolute source",
			yaml: "version: 1\nfunctions:\n  hello: {source: DIR/echo/}\n" + api,
			check: func(t *testing.T, s *Stack, dir string) {
				if f := s.Functions["hello"]; f.Source != filepath.Join(dir, "echo") {
					t.Errorf("Source = %q", f.Source)
				}
			},
		},
		{
			name: "limits accepted",
			yaml: "version: 1\nfunctions:\n  hello: {source: hello, memory: 10240, timeout: 900s, maxConcurrency: 10000, minWarm: 1000}\n  h2: {source: hello, memory: 128, timeout: 1ms}\n" + api,
			check: func(t *testing.T, s *Stack, dir string) {
				if f := s.Functions["hello"]; f.MemoryMB != 10240 || f.Timeout != 900*time.Second || f.MaxConcurrency != 10000 || f.MinWarm != 1000 {
					t.Errorf("hello = %+v", f)
				}
				if f := s.Functions["h2"]; f.MemoryMB != 128 || f.Timeout != time.Millisecond {
					t.Errorf("h2 = %+v", f)
				}
			},
		},
		{
			name: "environment values keep their text",
			yaml: "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment:\n      A: 0x1F\n      B: 1.50\n      C: false\n      D: |\n        two\n        lines\n      _e: \"\"\n" + api,
			check: func(t *testing.T, s *Stack, dir string) {
				want := map[string]string{"A": "0x1F", "B": "1.50", "C": "false", "D": "two\nlines\n", "_e": ""}
				if got := s.Functions["hello"].Environment; !reflect.DeepEqual(got, want) {
					t.Errorf("environment = %q, want %q", got, want)
				}
			},
		},
		{
			name: "environment at the size limit",
			yaml: "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment: {A: " + strings.Repeat("x", MaxEnvironmentSize-1) + "}\n" + api,
			check: func(t *testing.T, s *Stack, dir string) {
				if n := len(s.Functions["hello"].Environment["A"]); n != MaxEnvironmentSize-1 {
					t.Errorf("len = %d", n)
				}
			},
		},
		{
			name: "integration long form",
			yaml: head + "apis:\n  web:\n    type: http\n    routes:\n      $default:\n        integration: {type: function, target: hello, payloadFormatVersion: \"2.0\", timeout: 50ms}\n",
			check: func(t *testing.T, s *Stack, dir string) {
				want := []Route{{Key: "$default", Line: 8, Integration: Integration{Type: "function", Target: "hello", PayloadFormatVersion: "2.0", Timeout: 50 * time.Millisecond}}}
				if got := s.APIs["web"].Routes; !reflect.DeepEqual(got, want) {
					t.Errorf("routes = %+v", got)
				}
			},
		},
		{
			name: "routes keep file order",
			yaml: head + "apis:\n  web:\n    type: http\n    routes:\n      PUT /z: {function: hello}\n      GET /a: {function: hello}\n      $default: {function: hello}\n      DELETE /m: {function: hello}\n",
			check: func(t *testing.T, s *Stack, dir string) {
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
			check: func(t *testing.T, s *Stack, dir string) {
				want := map[string]Stage{
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
			check: func(t *testing.T, s *Stack, dir string) {
				if _, ok := s.APIs["web"].Stages["$default"]; !ok || len(s.APIs["web"].Stages) != 1 {
					t.Errorf("stages = %+v", s.APIs["web"].Stages)
				}
			},
		},
		{
			name: "same mount on different hosts",
			yaml: head + "apis:\n  a:\n    type: http\n    routes: {GET /x: {function: hello}}\n  b:\n    type: http\n    host: b.example\n    routes: {GET /x: {function: hello}}\n  c:\n    type: http\n    mount: /c\n    routes: {GET /x: {function: hello}}\n",
			check: func(t *testing.T, s *Stack, dir string) {
				if len(s.APIs) != 3 || s.APIs["b"].Host != "b.example" || s.APIs["c"].Mount != "/c" {
					t.Errorf("apis = %+v", s.APIs)
				}
			},
		},
		{
			name: "stage name like a route segment",
			yaml: head + "apis:\n  web:\n    type: http\n    stages: {hello: {}, $default: {}}\n    routes:\n      GET /hello: {function: hello}\n",
			check: func(t *testing.T, s *Stack, dir string) {
				if len(s.APIs["web"].Stages) != 2 {
					t.Errorf("stages = %+v", s.APIs["web"].Stages)
				}
			},
		},
		{
			name: "anchors, aliases and merge lists",
			yaml: "version: 1\nfunctions:\n  a: &a {source: hello, memory: 256}\n  b: &b {source: echo, timeout: 1s, memory: 512}\n  c:\n    <<: [*a, *b]\n    minWarm: 2\napis:\n  web:\n    type: http\n    routes: &r\n      GET /x: {function: a}\n  web2:\n    type: http\n    mount: /two\n    routes: *r\n",
			check: func(t *testing.T, s *Stack, dir string) {
				c := s.Functions["c"]
				if c.MemoryMB != 256 || c.Timeout != time.Second || c.MinWarm != 2 || c.Source != filepath.Join(dir, "hello") {
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
			check: func(t *testing.T, s *Stack, dir string) {
				if s.Name != "123" {
					t.Errorf("name = %q", s.Name)
				}
			},
		},
		{
			name: "null sections",
			yaml: "version: 1\nname: x\nfunctions:\n  hello:\n    source: hello\n    environment:\n" + api,
			check: func(t *testing.T, s *Stack, dir string) {
				if env := s.Functions["hello"].Environment; env == nil || len(env) != 0 {
					t.Errorf("environment = %#v", env)
				}
			},
		},
		{
			name: "empty trailing document",
			yaml: head + api + "---\n# nothing\n",
			check: func(t *testing.T, s *Stack, dir string) {
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
	tests := []struct {
		name string
		yaml string
		want string
	}{
		// The file and YAML syntax.
		{"empty file", "", `gatehouse.yaml:1:1: the stack file is empty; a stack file starts with "version: 1"`},
		{"comments only", "# nothing\n", `gatehouse.yaml:1:1: the stack file is empty`},
		{"not a mapping", "- a\n- b\n", `gatehouse.yaml:1:1: a stack file is a mapping of version, name, functions and apis; got a list`},
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

		// version and name.
		{"version missing", fn + api, `gatehouse.yaml:1:1: version: required; add "version: 1" at the top of the file`},
		{"version 2", "name: x\nversion: 2\nnewKey: 1\n", `gatehouse.yaml:2:10: version: version 2 is not supported; this Gatehouse reads version 1`},
		{"version string", "version: \"1\"\n", `gatehouse.yaml:1:10: version: want a whole number, got the string "1"`},
		{"version float", "version: 1.0\n", `gatehouse.yaml:1:10: version: want a whole number, got the number 1.0`},
		{"unknown top-level key", "version: 1\nfunction:\n  a: {}\n", `gatehouse.yaml:2:1: function: unknown key (did you mean "functions"?); known keys here: version, name, functions, apis`},
		{"name upper case", "version: 1\nname: Shop\n" + fn + api, `gatehouse.yaml:2:7: name: "Shop" is not a valid stack name`},
		{"name too long", "version: 1\nname: " + strings.Repeat("a", 64) + "\n" + fn + api, `gatehouse.yaml:2:7: name: "aaaa`},
		{"name number", "version: 1\nname: 123\n", `gatehouse.yaml:2:7: name: want a string, got the number 123 (quote it: "123")`},

		// functions.
		{"functions not a mapping", "version: 1\nfunctions: [a]\n", `gatehouse.yaml:2:12: functions: want a mapping, got a list`},
		{"source missing", "version: 1\nfunctions:\n  hello:\n    memory: 256\n", `gatehouse.yaml:3:3: functions.hello.source: required: the function's Go source directory or .wasm file`},
		{"memory null", "version: 1\nfunctions:\n  hello:\n    source: hello\n    memory:\n", `gatehouse.yaml:5:5: functions.hello.memory: want a whole number of MB, got nothing (null)`},
		{"source missing (null function)", "version: 1\nfunctions:\n  hello:\n", `gatehouse.yaml:3:3: functions.hello.source: required`},
		{"source does not exist", "version: 1\nfunctions:\n  hello:\n    source: ./nope\n", `gatehouse.yaml:4:13: functions.hello.source: "./nope" does not exist (looked for "DIR/nope")`},
		{"source neither", "version: 1\nfunctions:\n  hello: {source: notes.txt}\n", `gatehouse.yaml:3:19: functions.hello.source: "notes.txt" is neither a directory of Go source nor a .wasm file`},
		{"source empty", "version: 1\nfunctions:\n  hello: {source: \"\"}\n", `gatehouse.yaml:3:19: functions.hello.source: empty`},
		{"unknown function key", "version: 1\nfunctions:\n  hello:\n    source: hello\n    tmeout: 3s\n", `gatehouse.yaml:5:5: functions.hello.tmeout: unknown key (did you mean "timeout"?); known keys here: source, memory, timeout, environment, maxConcurrency, minWarm`},
		{"key in wrong case", "version: 1\nfunctions:\n  hello:\n    source: hello\n    MaxConcurrency: 3\n", `gatehouse.yaml:5:5: functions.hello.MaxConcurrency: unknown key (did you mean "maxConcurrency"?)`},
		{"bad function name", "version: 1\nfunctions:\n  hello world: {source: hello}\n" + api, `gatehouse.yaml:3:3: functions["hello world"]: "hello world" is not a valid function name`},
		{"memory string", "version: 1\nfunctions:\n  hello:\n    source: hello\n    memory: 256MB\n", `gatehouse.yaml:5:13: functions.hello.memory: want a whole number of MB, got the string "256MB"`},
		{"memory fraction", "version: 1\nfunctions:\n  hello:\n    source: hello\n    memory: 128.5\n", `gatehouse.yaml:5:13: functions.hello.memory: want a whole number of MB, got the number 128.5`},
		{"memory too small", "version: 1\nfunctions:\n  hello:\n    source: hello\n    memory: 64\n" + api, `gatehouse.yaml:5:13: functions.hello.memory: 64 is out of range: want 128 to 10240 (MB)`},
		{"memory too large", "version: 1\nfunctions:\n  hello:\n    source: hello\n    memory: 10241\n" + api, `gatehouse.yaml:5:13: functions.hello.memory: 10241 is out of range`},
		{"memory huge", "version: 1\nfunctions:\n  hello:\n    source: hello\n    memory: 99999999999999999999\n", `gatehouse.yaml:5:13: functions.hello.memory: 99999999999999999999 is too large`},
		{"timeout bad", "version: 1\nfunctions:\n  hello:\n    source: hello\n    timeout: 3x\n", `gatehouse.yaml:5:14: functions.hello.timeout: "3x" is not a duration (want e.g. 3s or 500ms)`},
		{"idleTimeout too short", "version: 1\nfunctions:\n  hello:\n    source: hello\n    idleTimeout: 10ms\napis: {web: {type: http, routes: {GET /x: {function: hello}}}}\n", `gatehouse.yaml:5:18: functions.hello.idleTimeout: 10ms is out of range: want 1s to 24h0m0s`},
		{"timeout bare number", "version: 1\nfunctions:\n  hello:\n    source: hello\n    timeout: 3\n", `gatehouse.yaml:5:14: functions.hello.timeout: 3 is not a duration: give a unit, e.g. "3s" or "3ms"`},
		{"timeout mapping", "version: 1\nfunctions:\n  hello:\n    source: hello\n    timeout: {s: 3}\n", `gatehouse.yaml:5:14: functions.hello.timeout: want a duration such as 3s or 500ms, got a mapping`},
		{"timeout too long", "version: 1\nfunctions:\n  hello:\n    source: hello\n    timeout: 901s\n" + api, `gatehouse.yaml:5:14: functions.hello.timeout: 15m1s is out of range: want 1ms to 900s`},
		{"timeout zero", "version: 1\nfunctions:\n  hello:\n    source: hello\n    timeout: 0s\n" + api, `gatehouse.yaml:5:14: functions.hello.timeout: 0s is out of range`},
		{"timeout negative", "version: 1\nfunctions:\n  hello:\n    source: hello\n    timeout: -1s\n" + api, `gatehouse.yaml:5:14: functions.hello.timeout: -1s is out of range`},
		{"environment list", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment: [A=1]\n", `gatehouse.yaml:5:18: functions.hello.environment: want a mapping, got a list`},
		{"environment bad name", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment:\n      1A: x\n" + api, `gatehouse.yaml:6:7: functions.hello.environment.1A: not a valid variable name`},
		{"environment name with dash", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment:\n      A-B: x\n" + api, `gatehouse.yaml:6:7: functions.hello.environment.A-B: not a valid variable name`},
		{"environment reserved AWS_", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment:\n      AWS_REGION: x\n" + api, `gatehouse.yaml:6:7: functions.hello.environment.AWS_REGION: names starting with AWS_ or GATEHOUSE_ are reserved`},
		{"environment reserved GATEHOUSE_", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment: {OK: 1, GATEHOUSE_X: y}\n" + api, `gatehouse.yaml:5:26: functions.hello.environment.GATEHOUSE_X: names starting with AWS_ or GATEHOUSE_ are reserved`},
		{"environment null value", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment:\n      A:\n", `gatehouse.yaml:6:7: functions.hello.environment.A: want a string, got nothing (null); write "" for an empty value`},
		{"environment too big", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment: {A: " + strings.Repeat("x", MaxEnvironmentSize) + "}\n" + api, `gatehouse.yaml:5:5: functions.hello.environment: the variables take more than 4096 bytes (names and values); the limit is 4096 (4 KB, as in AWS Lambda)`},
		{"environment nested", "version: 1\nfunctions:\n  hello:\n    source: hello\n    environment:\n      A: {b: c}\n", `gatehouse.yaml:6:10: functions.hello.environment.A: want a string, got a mapping`},
		{"maxConcurrency negative", "version: 1\nfunctions:\n  hello: {source: hello, maxConcurrency: -1}\n" + api, `gatehouse.yaml:3:42: functions.hello.maxConcurrency: -1 is out of range: want 0 (unlimited) to 10000`},
		{"minWarm over maxConcurrency", "version: 1\nfunctions:\n  hello: {source: hello, maxConcurrency: 2, minWarm: 3}\n" + api, `gatehouse.yaml:3:54: functions.hello.minWarm: 3 is more than maxConcurrency (2)`},
		{"minWarm too many", "version: 1\nfunctions:\n  hello: {source: hello, minWarm: 1001}\n" + api, `gatehouse.yaml:3:35: functions.hello.minWarm: 1001 is out of range: want 0 to 1000`},
		{"minWarm bool", "version: 1\nfunctions:\n  hello: {source: hello, minWarm: true}\n", `gatehouse.yaml:3:35: functions.hello.minWarm: want a whole number, got the boolean true`},

		// apis.
		{"no apis", "version: 1\n" + fn, `gatehouse.yaml:1:1: apis: stack defines no apis`},
		{"empty apis", "version: 1\n" + fn + "apis: {}\n", `gatehouse.yaml:4:1: apis: stack defines no apis`},
		{"api type missing", "version: 1\n" + fn + "apis:\n  web:\n    routes: {}\n", `gatehouse.yaml:5:3: apis.web.type: required: "http"`},
		{"api websocket", "version: 1\n" + fn + "apis:\n  chat:\n    type: websocket\n    routes:\n      $connect: {function: hello}\n", `gatehouse.yaml:6:11: apis.chat.type: websocket APIs are not supported yet`},
		{"api type unknown", "version: 1\n" + fn + "apis:\n  web:\n    type: rest\n    routes: {GET /x: {function: hello}}\n", `gatehouse.yaml:6:11: apis.web.type: unknown API type "rest": want "http"`},
		{"api bad name", "version: 1\n" + fn + "apis:\n  web.v1:\n    type: http\n    routes: {GET /x: {function: hello}}\n", `gatehouse.yaml:5:3: apis["web.v1"]: "web.v1" is not a valid API name`},
		{"api unknown key", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    route: {}\n", `gatehouse.yaml:7:5: apis.web.route: unknown key (did you mean "routes"?)`},
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
		{"stage too many variables", ok + "    stages:\n      prod:\n        variables: {" + manyVars(101) + "}\n", `gatehouse.yaml:11:9: apis.web.stages.prod.variables: more than 100 variables in one stage`},

		// routes.
		{"route key shape", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      /x: {function: hello}\n", `gatehouse.yaml:8:7: apis.web.routes["/x"]: not a route key: want "$default" or "METHOD /path"`},
		{"route method lower case", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      get /x: {function: hello}\n", `gatehouse.yaml:8:7: apis.web.routes["get /x"]: the method "get" must be an upper-case word`},
		{"route path relative", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET x: {function: hello}\n", `gatehouse.yaml:8:7: apis.web.routes["GET x"]: the path must start with /`},
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
		{"integration type http", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {type: http, target: hello}\n", `gatehouse.yaml:9:29: apis.web.routes["GET /x"].integration.type: integration type "http" is not supported: only "function" for now`},
		{"integration unknown key", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello, uri: x}\n", `gatehouse.yaml:9:38: apis.web.routes["GET /x"].integration.uri: unknown key`},
		{"payload 1.0", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello, payloadFormatVersion: \"1.0\"}\n", `gatehouse.yaml:9:60: apis.web.routes["GET /x"].integration.payloadFormatVersion: payload format 1.0 is not supported yet; use "2.0"`},
		{"payload 2", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello, payloadFormatVersion: 2}\n", `gatehouse.yaml:9:60: apis.web.routes["GET /x"].integration.payloadFormatVersion: unknown payload format version "2": want "2.0"`},
		{"integration timeout too long", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x:\n        integration: {target: hello, timeout: 31s}\n", `gatehouse.yaml:9:47: apis.web.routes["GET /x"].integration.timeout: 31s is out of range: want 50ms to 30s`},
		{"shorthand timeout too short", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n      GET /x: {function: hello, timeout: 49ms}\n", `gatehouse.yaml:8:42: apis.web.routes["GET /x"].timeout: 49ms is out of range: want 50ms to 30s`},
		{"too many routes", "version: 1\n" + fn + "apis:\n  web:\n    type: http\n    routes:\n" + manyRoutes(301), `gatehouse.yaml:308:7: apis.web.routes: more than 300 routes in one API`},
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
	data := append([]byte("version: 1\n#"), make([]byte, MaxFileSize)...)
	for i := range data[12:] {
		data[12+i] = 'x'
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(big)
	if want := big + ":1:1: the file is larger than the limit of 1048576 bytes (1 MiB)"; err == nil || err.Error() != want {
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
	for k, want := range map[SourceKind]string{SourceGo: "go", SourceWasm: "wasm", 0: "SourceKind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("%d: got %q, want %q", int(k), got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	valid := func() *Stack {
		return &Stack{Version: 1, Name: "s", File: "code",
			Functions: map[string]Function{"f": {Name: "f", Source: "/src/f", Kind: SourceGo, MemoryMB: 128, Timeout: time.Second}},
			APIs: map[string]API{"a": {Name: "a", Type: "http", Mount: "/",
				Stages: map[string]Stage{"$default": {Name: "$default"}},
				Routes: []Route{{Key: "GET /x", Integration: Integration{Type: "function", Target: "f", PayloadFormatVersion: "2.0", Timeout: time.Second}}}}},
		}
	}
	tests := []struct {
		name   string
		change func(s *Stack)
		want   string // "" for valid
	}{
		{"valid", func(*Stack) {}, ""},
		{"zero stack", func(s *Stack) { *s = Stack{} }, "version: version 0 is not supported"},
		{"relative source", func(s *Stack) { f := s.Functions["f"]; f.Source = "src"; s.Functions["f"] = f }, `code: functions.f.source: want an absolute path, got "src"`},
		{"kind unset", func(s *Stack) { f := s.Functions["f"]; f.Kind = 0; s.Functions["f"] = f }, `code: functions.f.source: unknown source kind SourceKind(0)`},
		{"memory unset", func(s *Stack) { f := s.Functions["f"]; f.MemoryMB = 0; s.Functions["f"] = f }, `code: functions.f.memory: 0 is out of range`},
		{"name mismatch", func(s *Stack) { f := s.Functions["f"]; f.Name = "g"; s.Functions["f"] = f }, `code: functions.f: Name "g" differs from the map key`},
		{"no stages", func(s *Stack) { a := s.APIs["a"]; a.Stages = nil; s.APIs["a"] = a }, `code: apis.a.stages: no stages`},
		{"duplicate route", func(s *Stack) { a := s.APIs["a"]; a.Routes = append(a.Routes, a.Routes[0]); s.APIs["a"] = a }, `code: apis.a.routes["GET /x"]: duplicate route`},
		{"too many routes", func(s *Stack) {
			a := s.APIs["a"]
			for i := range MaxRoutesPerAPI {
				a.Routes = append(a.Routes, Route{Key: "GET /r" + strconv.Itoa(i), Integration: a.Routes[0].Integration})
			}
			s.APIs["a"] = a
		}, `code: apis.a.routes: more than 300 routes`},
		{"unknown target", func(s *Stack) { a := s.APIs["a"]; a.Routes[0].Integration.Target = "g"; s.APIs["a"] = a }, `code: apis.a.routes["GET /x"].integration.target: no function named "g"`},
		{"environment too big", func(s *Stack) {
			f := s.Functions["f"]
			f.Environment = map[string]string{"A": strings.Repeat("x", 3000), "B": strings.Repeat("x", 1095)}
			s.Functions["f"] = f
		}, `code: functions.f.environment: the variables take 4097 bytes`},
		{"environment NUL", func(s *Stack) {
			f := s.Functions["f"]
			f.Environment = map[string]string{"A": "a\x00"}
			s.Functions["f"] = f
		}, `code: functions.f.environment.A: the value contains a NUL byte`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.change(s)
			err := s.Validate()
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
	dir := stackDir(t)
	for _, p := range []string{"functions/orders", "build"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "build", "legacy.wasm"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```yaml\n")[1:]
	n := 0
	for i, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		if !strings.HasPrefix(b, "version: 1\n") {
			continue
		}
		n++
		if _, err := Parse("stack-file.md block "+strconv.Itoa(i+1), []byte(b), dir); err != nil {
			t.Errorf("%v", err)
		}
	}
	if n < 2 {
		t.Errorf("found %d complete examples in the docs, want at least 2", n)
	}
}
