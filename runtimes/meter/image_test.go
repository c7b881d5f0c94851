package meter_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/runtimes/meter"
)

func watModule(t *testing.T, name string) []byte {
	t.Helper()
	wasm, err := os.ReadFile(testfix.WAT(t, "runtimes/meter/testdata/"+name))
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// TestDetachWritesTheSameMemory: the detached module with its segments written by the host starts
// with the very memory the module would have had, and its globals are exported, settable where they
// are mutable.
func TestDetachWritesTheSameMemory(t *testing.T) {
	ctx := context.Background()
	wasm := watModule(t, "image.wat")
	d, err := meter.Detach(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if d.TableWrites {
		t.Error("TableWrites for a module without tables")
	}
	if len(d.Segments) >= 8 {
		t.Errorf("%d segments: adjacent ones were not merged", len(d.Segments))
	}
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	orig, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("orig"))
	if err != nil {
		t.Fatal(err)
	}
	det, err := rt.InstantiateWithConfig(ctx, d.Wasm, wazero.NewModuleConfig().WithName("detached"))
	if err != nil {
		t.Fatal(err)
	}
	mem := det.Memory()
	for _, s := range d.Segments {
		if !mem.Write(s.Offset, s.Data) {
			t.Fatalf("segment at %d (%d bytes) does not fit", s.Offset, len(s.Data))
		}
	}
	want, _ := orig.Memory().Read(0, orig.Memory().Size())
	got, _ := mem.Read(0, mem.Size())
	if !bytes.Equal(got, want) {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("memory differs first at %d: %q, want %q", i, got[i:min(i+16, len(got))], want[i:min(i+16, len(want))])
			}
		}
		t.Fatalf("memory sizes %d and %d", len(got), len(want))
	}
	if len(d.Globals) != 3 {
		t.Fatalf("Globals = %v, want the module's 3", d.Globals)
	}
	counter, ok := det.ExportedGlobal(meter.GlobalExport(d.Globals[0])).(api.MutableGlobal)
	if !ok {
		t.Fatal("the mutable global is not exported as mutable")
	}
	if _, ok := det.ExportedGlobal(meter.GlobalExport(d.Globals[2])).(api.MutableGlobal); ok {
		t.Error("the immutable global is exported as mutable")
	}
	counter.Set(100)
	if res, err := det.ExportedFunction("bump").Call(ctx); err != nil || res[0] != 142 {
		t.Fatalf("bump after setting the counter = %v, %v; want 142", res, err)
	}
	if res, err := orig.ExportedFunction("bump").Call(ctx); err != nil || res[0] != 49 {
		t.Fatalf("the original's bump = %v, %v; want 49", res, err)
	}
}

// TestDetachRefusals: modules whose data the host cannot write before their code runs, or whose
// segments are not where Detach can place them, keep them.
func TestDetachRefusals(t *testing.T) {
	for _, name := range []string{"detach-start.wat", "detach-meminit.wat", "detach-passive.wat",
		"detach-import-memory.wat", "detach-global-offset.wat", "detach-outside.wat"} {
		t.Run(name, func(t *testing.T) {
			if _, err := meter.Detach(watModule(t, name)); !errors.Is(err, meter.ErrNotDetachable) {
				t.Fatalf("Detach = %v, want ErrNotDetachable", err)
			}
		})
	}
	if _, err := meter.Detach([]byte("not wasm")); !errors.Is(err, meter.ErrMalformed) {
		t.Errorf("Detach of garbage = %v, want ErrMalformed", err)
	}
}

// TestDetachSeesTableWrites: a module that writes a table cannot have a snapshot (tables are not
// saved); one that only calls through a table can.
func TestDetachSeesTableWrites(t *testing.T) {
	d, err := meter.Detach(watModule(t, "detach-table-set.wat"))
	if err != nil {
		t.Fatal(err)
	}
	if !d.TableWrites {
		t.Error("table.set not seen")
	}
	// A module Instrument rewrote says so itself, and Detach takes its word.
	cfg := meter.Config{ImportModule: "gatehouse", ImportName: "yield", Fuel: 1 << 20, MaxDepth: 1000, BulkShift: 6}
	for name, want := range map[string]bool{"detach-table-set.wat": true, "image.wat": false} {
		metered, err := meter.Instrument(watModule(t, name), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := meter.Detach(metered); err != nil || d.TableWrites != want {
			t.Errorf("%s rewritten: TableWrites %v (%v), want %v", name, d != nil && d.TableWrites, err, want)
		}
	}
	// A Go module calls through its table and never writes it; its tens of thousands of data
	// segments merge into a few.
	wasm, err := os.ReadFile(testfix.Reactor(t, "samples/hello"))
	if err != nil {
		t.Fatal(err)
	}
	if d, err = meter.Detach(wasm); err != nil {
		t.Fatal(err)
	}
	if d.TableWrites {
		t.Error("TableWrites for a Go module, which only calls through its table")
	}
	if len(d.Segments) > 1000 {
		t.Errorf("a Go module's data is %d segments after merging", len(d.Segments))
	}
}
