package runtimes_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/runtimes"
)

func newEngine(t *testing.T) *runtimes.Engine {
	t.Helper()
	e, err := runtimes.NewEngine(context.Background(), runtimes.Config{CacheDir: testfix.CompileCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func compile(t *testing.T, e *runtimes.Engine, path string) *runtimes.Module {
	t.Helper()
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.Compile(context.Background(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func httpEvent(t *testing.T, headers map[string]string) []byte {
	t.Helper()
	b, err := json.Marshal(events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: "/echo/x", Headers: headers})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReactorServesManyInvocations(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	m := compile(t, e, testfix.Reactor(t, "samples/echo"))
	if m.ABI() != runtimes.ABIReactor {
		t.Fatalf("ABI = %v, want reactor", m.ABI())
	}
	inst, err := m.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "echo", MemoryMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	for i := range 3 {
		out, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "req-1", Deadline: time.Now().Add(time.Second)}, httpEvent(t, map[string]string{"n": string(rune('a' + i))}))
		if err != nil {
			t.Fatal(err)
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("response %q: %v", out, err)
		}
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal([]byte(resp.Body), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Headers["n"] != string(rune('a'+i)) || ev.RawPath != "/echo/x" {
			t.Fatalf("echoed event %+v", ev)
		}
	}
}

func TestReactorFunctionErrorKeepsInstance(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	m := compile(t, e, testfix.Reactor(t, "samples/echo"))
	inst, err := m.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	_, err = inst.Invoke(ctx, runtimes.Meta{}, httpEvent(t, map[string]string{"x-echo-fail": "error"}))
	var fe *runtimes.FunctionError
	if !errors.As(err, &fe) || !errors.Is(err, runtimes.ErrFunction) || !strings.Contains(fe.Message, "asked to fail") {
		t.Fatalf("err = %v, want a function error", err)
	}
	if inst.Broken() {
		t.Fatal("a returned error must not break the instance")
	}
	if _, err := inst.Invoke(ctx, runtimes.Meta{}, httpEvent(t, nil)); err != nil {
		t.Fatalf("after an error: %v", err)
	}
	_, err = inst.Invoke(ctx, runtimes.Meta{}, httpEvent(t, map[string]string{"x-echo-fail": "panic"}))
	if !errors.As(err, &fe) || !strings.Contains(fe.Message, "asked to panic") {
		t.Fatalf("err = %v, want the panic", err)
	}
	if !inst.Broken() {
		t.Fatal("a panic must break the instance")
	}
}

func TestCommandABI(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	m := compile(t, e, testfix.Command(t, "samples/echo"))
	if m.ABI() != runtimes.ABICommand {
		t.Fatalf("ABI = %v, want command", m.ABI())
	}
	inst, err := m.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "r"}, httpEvent(t, map[string]string{"k": "v"}))
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != 200 || !strings.Contains(resp.Body, `"k":"v"`) {
		t.Fatalf("response %s (%v)", out, err)
	}
	_, err = inst.Invoke(ctx, runtimes.Meta{}, httpEvent(t, map[string]string{"x-echo-fail": "error"}))
	if !errors.Is(err, runtimes.ErrFunction) {
		t.Fatalf("err = %v, want a function error", err)
	}
}
