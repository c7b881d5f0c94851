package spec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFunctionSettingsValidate(t *testing.T) {
	if errs := DefaultFunctionSettings().Validate(); errs != nil {
		t.Fatalf("the defaults: %v", errs)
	}
	tests := []struct {
		name   string
		change func(s *FunctionSettings)
		want   []string // every problem, in order; nil for valid
	}{
		{"limits", func(s *FunctionSettings) {
			s.MemoryMB, s.Timeout, s.MaxConcurrency, s.MinWarm, s.IdleTimeout = MaxMemoryMB, Duration(MaxTimeout), MaxMaxConcurrency, MaxMinWarm, Duration(MaxIdleTimeout)
		}, nil},
		{"least", func(s *FunctionSettings) {
			s.MemoryMB, s.Timeout, s.IdleTimeout = MinMemoryMB, Duration(MinTimeout), Duration(MinIdleTimeout)
		}, nil},
		{"every setting wrong", func(s *FunctionSettings) {
			s.MemoryMB, s.Timeout, s.MaxConcurrency, s.MinWarm, s.IdleTimeout = 64, Duration(901*time.Second), -1, 1001, 0
			s.Environment = map[string]string{"1A": "x", "aws_REGION": "x", "NUL": "a\x00", "BAD": "\xff", "a b": ""}
		}, []string{
			"memory: 64 is out of range: want 128 to 10240 (MB)",
			"timeout: 901s is out of range: want 1ms to 900s",
			"environment.1A: not a valid variable name: want letters, digits and _, not starting with a digit",
			"environment.BAD: the value is not valid UTF-8",
			"environment.NUL: the value contains a NUL byte",
			`environment["a b"]: not a valid variable name: want letters, digits and _, not starting with a digit`,
			"environment.aws_REGION: names starting with AWS_ or GATEHOUSE_ are reserved: Gatehouse sets them",
			"maxConcurrency: -1 is out of range: want 0 (unlimited) to 10000",
			"minWarm: 1001 is out of range: want 0 to 1000",
			"idleTimeout: 0s is out of range: want 1s to 24h",
		}},
		{"durations as written", func(s *FunctionSettings) {
			s.Timeout, s.IdleTimeout = Duration(time.Hour), Duration(500*time.Millisecond)
		}, []string{"timeout: 1h is out of range: want 1ms to 900s", "idleTimeout: 500ms is out of range: want 1s to 24h"}},
		{"minWarm over maxConcurrency", func(s *FunctionSettings) { s.MaxConcurrency, s.MinWarm = 2, 3 },
			[]string{"minWarm: 3 is more than maxConcurrency (2)"}},
		{"snapStart on a WebAssembly function", func(s *FunctionSettings) { s.SnapStart = true }, nil},
		{"snapStart with runtime wasm", func(s *FunctionSettings) { s.Runtime, s.SnapStart = RuntimeWasm, true }, nil},
		{"snapStart on a process runtime", func(s *FunctionSettings) { s.Runtime, s.Handler, s.SnapStart = "python3.12", "app.handler", true },
			[]string{"snapStart: applies to WebAssembly functions only (runtime: wasm); a python3.12 function cannot start from a snapshot: remove it"}},
		{"snapStart false on a process runtime", func(s *FunctionSettings) { s.Runtime, s.Handler = "nodejs20.x", "index.handler" }, nil},
		{"environment too big", func(s *FunctionSettings) {
			s.Environment = map[string]string{"A": strings.Repeat("x", 3000), "B": strings.Repeat("x", 1095)}
		}, []string{"environment: the variables take 4097 bytes (names and values); the limit is 4096 (4 KB, as in AWS Lambda)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DefaultFunctionSettings()
			tt.change(&s)
			errs := s.Validate()
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
				if e.Path != FormatPath(e.Keys) {
					t.Errorf("%s: Keys %q", e.Path, e.Keys)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// A function of a stack is checked by the same rules, under functions.NAME.
func TestStackChecksFunctionSettings(t *testing.T) {
	s := validStack()
	fn := s.Functions["hello"]
	fn.Timeout, fn.Environment = 0, map[string]string{"GATEHOUSE_X": "1"}
	s.Functions["hello"] = fn
	errs := s.Validate()
	want := []string{
		"functions.hello.timeout: 0s is out of range: want 1ms to 900s",
		"functions.hello.environment.GATEHOUSE_X: names starting with AWS_ or GATEHOUSE_ are reserved: Gatehouse sets them",
	}
	if len(errs) != len(want) {
		t.Fatalf("got %v", errs)
	}
	for i, w := range want {
		if errs[i].Error() != w || !reflect.DeepEqual(errs[i].Keys[:2], []string{"functions", "hello"}) {
			t.Errorf("problem %d: got %s (keys %q), want %s", i, errs[i], errs[i].Keys, w)
		}
	}
	if !errs[1].AtKey || errs[0].AtKey {
		t.Errorf("AtKey: %v, %v; want false, true", errs[0].AtKey, errs[1].AtKey)
	}
}

// In JSON, a function's settings sit beside its source, under the stack file's keys.
func TestFunctionJSON(t *testing.T) {
	fn := Function{Name: "f", Source: "/src/f", Kind: SourceWasm, FunctionSettings: FunctionSettings{
		MemoryMB: 256, Timeout: Duration(1500 * time.Millisecond), Environment: map[string]string{"A": "1"},
		MaxConcurrency: 4, MinWarm: 1, IdleTimeout: Duration(time.Minute), SnapStart: true}}
	b, err := json.Marshal(fn)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"source":"/src/f","kind":"wasm","memory":256,"timeout":"1.5s","environment":{"A":"1"},"maxConcurrency":4,"minWarm":1,"idleTimeout":"1m0s","snapStart":true}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	var back Function
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	back.Name = "f"
	if !reflect.DeepEqual(back, fn) {
		t.Errorf("read back %+v, want %+v", back, fn)
	}
}

func TestRuntime(t *testing.T) {
	for runtime, want := range map[string]string{
		"":        "",
		"wasm":    "",
		"ruby3.3": "runtime: the ruby3.3 runtime is not available in this Gatehouse",
		"wsam":    `runtime: unknown runtime "wsam" (did you mean "wasm"?): want wasm`,
	} {
		s := DefaultFunctionSettings()
		s.Runtime = runtime
		errs := s.Validate()
		if want == "" && errs != nil || want != "" && (len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), want)) {
			t.Errorf("runtime %q: %v, want %q", runtime, errs, want)
		}
		if want == "" && s.RuntimeName() != RuntimeWasm {
			t.Errorf("runtime %q is named %q", runtime, s.RuntimeName())
		}
	}
}

func TestProcessRuntimeSettings(t *testing.T) {
	for _, c := range []struct {
		runtime, handler, isolation string
		want                        string
	}{
		{"python3.12", "app.lambda_handler", "none", ""},
		{"nodejs20.x", "index.handler", "none", ""},
		{"provided.al2023", "", "none", ""},
		{"python3.12", "", "none", "handler: required for the python3.12 runtime"},
		{"nodejs22.x", "index.handler", "", ""},
		{"python3.13", "app.h", "sandbox", ""},
		{"python3.12", "app.h", "namespaces", `isolation: "namespaces" is not an isolation: want sandbox (the default) or none`},
		{"wasm", "app.h", "", "handler: only for process runtimes"},
		{"", "", "none", "isolation: only for process runtimes"},
		{"python3.12", "app handler", "none", `handler: "app handler" is not a handler`},
	} {
		s := DefaultFunctionSettings()
		s.Runtime, s.Handler, s.Isolation = c.runtime, c.handler, c.isolation
		errs := s.Validate()
		if c.want == "" && errs != nil || c.want != "" && (len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c, errs, c.want)
		}
	}
	fn := Function{Name: "f", Source: "/src/f.zip", Kind: SourceZip, FunctionSettings: DefaultFunctionSettings()}
	c := &checker{}
	c.checkFunction("f", fn)
	if len(c.errs) != 1 || !strings.Contains(c.errs[0].Message, "a .zip package is for process runtimes") {
		t.Errorf("a zip for wasm: %v", c.errs)
	}
}
