package meter_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/runtimes/meter"
)

var errDepth = errors.New("call depth exceeded")

// harness runs a rewritten module in wazero, with the host function counting its calls.
type harness struct {
	t      *testing.T
	mod    api.Module
	yields int
	fuel   int32
}

func newHarness(t *testing.T, wasm []byte, cfg meter.Config) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{t: t, fuel: cfg.Fuel}
	cfg.ImportModule, cfg.ImportName = "gatehouse", "yield"
	metered, err := meter.Instrument(wasm, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { rt.Close(ctx) })
	if _, err := rt.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithFunc(func(x int32) int32 { return x + 1 }).Export("add1").Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.NewHostModuleBuilder("gatehouse").NewFunctionBuilder().
		WithFunc(func(reason int32) int32 {
			if reason == meter.ReasonDepth {
				panic(errDepth)
			}
			h.yields++
			return h.fuel
		}).Export("yield").Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	if h.mod, err = rt.Instantiate(ctx, metered); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) call(name string, args ...uint64) ([]uint64, error) {
	h.t.Helper()
	f := h.mod.ExportedFunction(name)
	if f == nil {
		h.t.Fatalf("no export %s", name)
	}
	return f.Call(context.Background(), args...)
}

func (h *harness) want(name string, args []uint64, want ...uint64) {
	h.t.Helper()
	got, err := h.call(name, args...)
	if err != nil {
		h.t.Fatalf("%s%v: %v", name, args, err)
	}
	if !slices.Equal(got, want) {
		h.t.Fatalf("%s%v = %v, want %v", name, args, got, want)
	}
}

func shapes(t *testing.T) []byte {
	wasm, err := os.ReadFile(testfix.WAT(t, "runtimes/meter/testdata/shapes.wat", "--debug-names"))
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// TestRewriteKeepsBehaviour calls every shape of the module through the rewrite: the same answers
// as the module would give, which needs every function index fixed.
func TestRewriteKeepsBehaviour(t *testing.T) {
	h := newHarness(t, shapes(t), meter.Config{Fuel: 1 << 20, MaxDepth: 1000, BulkShift: 6})
	h.want("started", nil, 5)
	h.want("direct", []uint64{20}, 41)
	h.want("indirect", []uint64{0, 10}, 20)
	h.want("indirect", []uint64{1, 10}, 11)
	h.want("indirect", []uint64{2, 10}, 30)
	h.want("via_global_ref", []uint64{4}, 8)
	h.want("via_code_ref", []uint64{4}, 12)
	h.want("count", []uint64{1000}, 1000)
	// Early return, a branch to the function's label, and falling off the end, each many times
	// more than the depth limit: the depth must be given back on every way out.
	for range 3000 {
		h.want("pair", []uint64{0}, 7, 8)
		h.want("pair", []uint64{1}, 3, 4)
		h.want("pair", []uint64{2}, 5, 6)
	}
	if h.yields != 0 {
		t.Fatalf("%d yields with fuel to spare", h.yields)
	}
}

// TestFuelRunsOut checks that loops, calls and bulk memory all cost fuel, and that the host is called
// each time it runs out.
func TestFuelRunsOut(t *testing.T) {
	h := newHarness(t, shapes(t), meter.Config{Fuel: 1000, MaxDepth: 1000, BulkShift: 6})
	h.want("count", []uint64{100_000}, 100_000)
	// 100,000 loop iterations at 1,001 per refill (it runs out below zero).
	if h.yields < 95 || h.yields > 105 {
		t.Fatalf("%d yields for 100,000 iterations at 1,000 fuel, want about 100", h.yields)
	}
	h.yields = 0
	for range 100 {
		h.want("fill", []uint64{65536}) // 1,024 units each at 64 bytes a unit
	}
	if h.yields < 90 {
		t.Fatalf("%d yields for 100 fills of 64 KiB at 1,000 fuel, want about 100", h.yields)
	}
	h.yields = 0
	for range 10_000 {
		h.want("direct", []uint64{1}, 3)
	}
	// Two entries per call (direct and double).
	if h.yields < 15 {
		t.Fatalf("%d yields for 20,000 function entries at 1,000 fuel", h.yields)
	}
}

func TestCallDepthIsBounded(t *testing.T) {
	h := newHarness(t, shapes(t), meter.Config{Fuel: 1 << 20, MaxDepth: 1000, BulkShift: 6})
	h.want("down", []uint64{900}, 900)
	if _, err := h.call("down", 5000); !errors.Is(err, errDepth) {
		t.Fatalf("down(5000) = %v, want the depth error", err)
	}
}

// TestTrapNamesTheRightFunction checks the name section: a trap's stack trace names the function
// that trapped.
func TestTrapNamesTheRightFunction(t *testing.T) {
	h := newHarness(t, shapes(t), meter.Config{Fuel: 1 << 20, MaxDepth: 1000, BulkShift: 6})
	_, err := h.call("boom")
	if err == nil {
		t.Fatal("boom returned")
	}
	trace := err.Error()
	if !strings.Contains(trace, "$boom") && !strings.Contains(trace, ".boom") {
		t.Fatalf("the trace does not name boom:\n%s", trace)
	}
	if strings.Contains(trace, "down") {
		t.Fatalf("the trace names the wrong function:\n%s", trace)
	}
}

func TestRefusals(t *testing.T) {
	cfg := meter.Config{ImportModule: "gatehouse", ImportName: "yield", Fuel: 1, MaxDepth: 1}
	for name, wasm := range map[string][]byte{
		"not wasm":  []byte("hello"),
		"truncated": shapes(t)[:100],
	} {
		if _, err := meter.Instrument(wasm, cfg); !errors.Is(err, meter.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	// A module that imports the reserved function itself.
	imports := []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" + // type 0: () -> ()
		"\x02\x13\x01\x09gatehouse\x05yield\x00\x00")
	if _, err := meter.Instrument(imports, cfg); !errors.Is(err, meter.ErrUnsupported) {
		t.Errorf("reserved import: %v, want ErrUnsupported", err)
	}
}

// TestEmptyModule rewrites a module with no sections at all: the rewrite adds its type, import and
// globals in order.
func TestEmptyModule(t *testing.T) {
	h := newHarness(t, []byte("\x00asm\x01\x00\x00\x00"), meter.Config{Fuel: 1, MaxDepth: 1})
	if h.mod == nil {
		t.Fatal("no module")
	}
}
