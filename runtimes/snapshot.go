package runtimes

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"gatehouse.dev/gatehouse/runtimes/meter"
)

// A snapshot is an initialised reactor instance's memory and globals, saved once, from which later
// instances of the same module and configuration start instead of running the module's data
// segments and its initialisation again. A Go guest's cold start is mostly that: copying its data in
// tens of thousands of segments, then starting the Go runtime and running the package initialisers
// and the code before the handler is registered.
//
// What the snapshot saves is frozen into every instance started from it: whatever the
// initialisation computed from the clock, from random numbers (the Go runtime's seeds: math/rand's
// top-level functions and map iteration order repeat from one instance to the next), from the
// environment (part of the snapshot's key, so it cannot differ) and from host calls. Clocks keep
// running: the monotonic clock is the machine's, continuous across instances. crypto/rand reads the
// host's random source each time. A module that exports ExportRestored has it called once after
// every restore, before its first invocation, to draw what must differ per instance.
//
// Tables are not saved: a module whose code writes a table is never snapshotted, and starts as
// usual.

// ExportRestored is what a reactor may export to run after it is started from a snapshot.
const ExportRestored = "gatehouse_restored"

// image is one snapshot.
type image struct {
	size    uint32          // memory size in bytes
	runs    []meter.Segment // the memory's pages that are not all zero
	globals []savedGlobal   // the values of the mutable globals the module defines
}

type savedGlobal struct {
	name  string
	value uint64
}

// snapshots holds a module's images by configuration.
type snapshots struct {
	mu     sync.Mutex
	images map[string]*image
}

// snapshotKey names what of cfg the guest sees while it initialises: an image is only for instances
// configured the same way.
func (m *Module) snapshotKey(cfg InstanceConfig) string {
	var b strings.Builder
	b.WriteString(cfg.FunctionName)
	b.WriteByte(0)
	b.WriteString(cfg.Version)
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(cfg.MemoryMB))
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(cfg.Env[k])
	}
	return b.String()
}

// Snapshottable reports whether instances of m can start from a snapshot.
func (m *Module) Snapshottable() bool {
	return m.abi != ABICommand && m.detached != nil && !m.detached.TableWrites
}

func (m *Module) image(key string) *image {
	m.snaps.mu.Lock()
	defer m.snaps.mu.Unlock()
	return m.snaps.images[key]
}

// capture saves mod, initialised and not yet invoked, as the image for key (unless one is saved).
func (m *Module) capture(mod api.Module, key string) error {
	mem := mod.Memory()
	if mem == nil {
		return fmt.Errorf("runtimes: snapshot: the module has no memory")
	}
	view, ok := mem.Read(0, mem.Size())
	if !ok {
		return fmt.Errorf("runtimes: snapshot: reading memory")
	}
	img := &image{size: mem.Size(), runs: nonZeroRuns(view)}
	for _, idx := range m.detached.Globals {
		name := meter.GlobalExport(idx)
		g, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		if !ok {
			continue // immutable: it has its initial value in every instance
		}
		img.globals = append(img.globals, savedGlobal{name: name, value: g.Get()})
	}
	m.snaps.mu.Lock()
	defer m.snaps.mu.Unlock()
	if m.snaps.images == nil {
		m.snaps.images = map[string]*image{}
	}
	if m.snaps.images[key] == nil {
		m.snaps.images[key] = img
	}
	return nil
}

// pageSize is the granularity of the zero pages a snapshot leaves out.
const pageSize = 4096

// nonZeroRuns copies the runs of mem's pages that are not all zero: fresh memory is zero already.
func nonZeroRuns(mem []byte) []meter.Segment {
	var runs []meter.Segment
	start := -1
	for off := 0; off < len(mem); off += pageSize {
		page := mem[off:min(off+pageSize, len(mem))]
		zero := isZero(page)
		switch {
		case !zero && start < 0:
			start = off
		case zero && start >= 0:
			runs = append(runs, meter.Segment{Offset: uint32(start), Data: append([]byte(nil), mem[start:off]...)})
			start = -1
		}
	}
	if start >= 0 {
		runs = append(runs, meter.Segment{Offset: uint32(start), Data: append([]byte(nil), mem[start:]...)})
	}
	return runs
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// restore starts an instance from img.
func (m *Module) restore(ctx context.Context, inst *Instance, img *image) (api.Module, error) {
	if err := m.e.cfg.Memory.room(uint64(img.size)); err != nil {
		return nil, err
	}
	mod, err := m.e.rt.InstantiateModule(m.e.withMemory(ctx), m.cm, m.moduleConfig(inst.cfg, &inst.sleep))
	if err != nil {
		return nil, err
	}
	mem := mod.Memory()
	if size := mem.Size(); size < img.size {
		if _, ok := mem.Grow((img.size - size) >> 16); !ok {
			mod.Close(ctx)
			return nil, fmt.Errorf("%w: the snapshot's memory (%d MiB) does not fit", ErrMemoryBudget, img.size>>20)
		}
	}
	for _, r := range img.runs {
		if !mem.Write(r.Offset, r.Data) {
			mod.Close(ctx)
			return nil, fmt.Errorf("the snapshot's memory at %d (%d bytes) is outside the instance's", r.Offset, len(r.Data))
		}
	}
	for _, g := range img.globals {
		mod.ExportedGlobal(g.name).(api.MutableGlobal).Set(g.value)
	}
	if fn := mod.ExportedFunction(ExportRestored); fn != nil {
		if _, err := fn.Call(ctx); err != nil {
			mod.Close(ctx)
			return nil, fmt.Errorf("%s: %w", ExportRestored, crashed(err))
		}
	}
	return mod, nil
}

// instantiate instantiates the compiled module with mc and, for a module whose data was detached,
// writes its data segments into the fresh memory before any of its code runs (mc must name no start
// functions).
func (m *Module) instantiate(ctx context.Context, mc wazero.ModuleConfig) (api.Module, error) {
	mod, err := m.e.rt.InstantiateModule(m.e.withMemory(ctx), m.cm, mc)
	if err != nil || m.detached == nil {
		return mod, err
	}
	mem := mod.Memory()
	for _, s := range m.detached.Segments {
		if !mem.Write(s.Offset, s.Data) {
			mod.Close(ctx)
			return nil, fmt.Errorf("data segment at %d (%d bytes) is outside the memory", s.Offset, len(s.Data))
		}
	}
	return mod, nil
}
