package runtimes_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/runtimes"
)

func TestABIDetection(t *testing.T) {
	tests := []struct {
		name    string
		wat     string
		limitMB int
		abi     runtimes.ABI
		err     error
		msg     string
	}{
		{name: "reactor", wat: "echo", abi: runtimes.ABIReactor},
		{name: "both ABIs", wat: "both", err: runtimes.ErrABI, msg: "exports both _start (command) and gatehouse_handle (reactor)"},
		{name: "neither ABI", wat: "neither", err: runtimes.ErrABI, msg: "exports neither gatehouse_alloc and gatehouse_handle (reactor) nor _start (command)"},
		{name: "wrong signature", wat: "bad-signature", err: runtimes.ErrABI, msg: "gatehouse_handle has signature (i32, i32) -> (i32), want (i32, i32, i32) -> (i64)"},
		{name: "foreign import", wat: "env-import", err: runtimes.ErrABI, msg: "imports env.abort"},
		{name: "initial memory over the limit", wat: "big-memory", limitMB: 128, err: runtimes.ErrMemoryLimit, msg: "needs more memory than the function's limit of 128 MB"},
		{name: "initial memory within a larger limit", wat: "big-memory", limitMB: 256, abi: runtimes.ABIReactor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e, err := runtimes.NewEngine(ctx, runtimes.Config{MemoryLimitMB: tt.limitMB})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close(ctx)
			wasm, err := os.ReadFile(testfix.WAT(t, "runtimes/testdata/abi/"+tt.wat+".wat"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := e.Compile(ctx, wasm)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("err = %v, want %v containing %q", err, tt.err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.ABI() != tt.abi {
				t.Fatalf("ABI %v, want %v", m.ABI(), tt.abi)
			}
		})
	}
}

func TestWATReactorEcho(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	m := compile(t, e, testfix.WAT(t, "runtimes/testdata/abi/echo.wat"))
	inst, err := m.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	for _, size := range []int{0, 10, 300 << 10} { // the last one makes the module grow its memory
		event := []byte(`"` + strings.Repeat("e", size) + `"`)
		out, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "r"}, event)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != string(event) {
			t.Fatalf("size %d: got %d bytes back", size, len(out))
		}
	}
}

// A guest sees only its configured environment and the variables describing it: no files, no network,
// nothing of the host's environment.
func TestSandboxSeesNothingOfTheHost(t *testing.T) {
	t.Setenv("GATEHOUSE_TEST_HOST_SECRET", "do-not-leak")
	ctx := context.Background()
	e := newEngine(t)
	m := compile(t, e, testfix.Reactor(t, "internal/testfix/testdata/probe"))
	inst, err := m.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "probe", Version: "3", MemoryMB: 256, Env: map[string]string{"GREETING": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	out, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "req-9", Deadline: time.Now().Add(time.Second)}, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Env                     []string
		Args                    []string
		ReadDir, OpenFile, Dial string
		Deadline                bool
		Request                 string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	slices.Sort(r.Env)
	want := []string{
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256", "AWS_LAMBDA_FUNCTION_NAME=probe", "AWS_LAMBDA_FUNCTION_VERSION=3",
		"AWS_LAMBDA_LOG_GROUP_NAME=/gatehouse/probe", "AWS_REGION=us-east-1", "GATEHOUSE_FUNCTION_ABI=reactor", "GREETING=hi",
	}
	if !slices.Equal(r.Env, want) {
		t.Errorf("environment %q, want exactly %q", r.Env, want)
	}
	for what, msg := range map[string]string{"read /": r.ReadDir, "open /etc/passwd": r.OpenFile, "dial": r.Dial} {
		if msg == "no error" || msg == "" {
			t.Errorf("%s succeeded inside the sandbox", what)
		}
	}
	if !r.Deadline || r.Request != "req-9" {
		t.Errorf("context: deadline %v, request %q", r.Deadline, r.Request)
	}
}
