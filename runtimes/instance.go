package runtimes

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"gatehouse.dev/gatehouse/runtimes/meter"
)

// Module is a compiled module whose ABI is known. It is immutable and safe for concurrent use.
type Module struct {
	e   *Engine
	cm  wazero.CompiledModule
	abi ABI
	// initialBytes is the size of the module's memory when it starts.
	initialBytes uint64
	// detached holds the data segments the host writes; nil when the module keeps them.
	detached *meter.Detached
	snaps    snapshots
}

// ABI returns the module's ABI.
func (m *Module) ABI() ABI { return m.abi }

// Close releases the compiled code. Instances must be closed first.
func (m *Module) Close(ctx context.Context) error {
	m.snaps.mu.Lock()
	m.snaps.images = nil
	m.snaps.mu.Unlock()
	return m.cm.Close(ctx)
}

// InstanceConfig describes the sandbox of one function version.
type InstanceConfig struct {
	// FunctionName and Version identify the function to the guest (AWS_LAMBDA_FUNCTION_NAME, ...).
	FunctionName string
	Version      string
	// MemoryMB is reported to the guest as AWS_LAMBDA_FUNCTION_MEMORY_SIZE.
	MemoryMB int
	// Env holds the function's configured environment variables: the only ones it sees besides the
	// AWS_LAMBDA_* and GATEHOUSE_* variables describing it.
	Env map[string]string
	// Stdout and Stderr receive the guest's output (for a command module, its stderr only; its stdout is
	// the response). Nil discards.
	Stdout, Stderr io.Writer
	// Host performs the function's host calls; nil makes them fail as unavailable.
	Host Host
	// Snapshot starts a reactor from a snapshot of its first initialised instance with the same
	// configuration, when the module allows one (see snapshot.go for what that freezes).
	Snapshot bool
}

// Meta is what a guest learns about one invocation.
type Meta struct {
	RequestID   string
	Deadline    time.Time
	TraceParent string
	// OnEffect, when set, runs before the invocation's first host call with effects outside its
	// sandbox (a post, a key-value write): from then on, running it again could repeat them.
	OnEffect func()
	// Turn, when set, is the CPU turn the invocation holds: offered up at every safepoint, given up
	// while the guest sleeps.
	Turn Turn
}

var instanceSeq atomic.Uint64

func (m *Module) moduleConfig(cfg InstanceConfig, sl *sleeper) wazero.ModuleConfig {
	mc := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module may live at once
		WithStartFunctions().
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(sl.sleep).
		WithRandSource(rand.Reader).
		WithArgs(cfg.FunctionName)
	if cfg.Stdout != nil {
		mc = mc.WithStdout(cfg.Stdout)
	}
	if cfg.Stderr != nil {
		mc = mc.WithStderr(cfg.Stderr)
	}
	for k, v := range cfg.Env {
		mc = mc.WithEnv(k, v)
	}
	mc = mc.WithEnv("AWS_LAMBDA_FUNCTION_NAME", cfg.FunctionName).
		WithEnv("AWS_LAMBDA_FUNCTION_VERSION", cfg.Version).
		WithEnv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", strconv.Itoa(cfg.MemoryMB)).
		WithEnv("AWS_LAMBDA_LOG_GROUP_NAME", "/gatehouse/"+cfg.FunctionName).
		WithEnv("AWS_REGION", "us-east-1").
		WithEnv("GATEHOUSE_FUNCTION_ABI", m.abi.String())
	return mc
}

// Instance is a sandbox that serves invocations one at a time. It is not safe for concurrent use.
type Instance struct {
	m      *Module
	cfg    InstanceConfig
	mod    api.Module // nil for command modules, which instantiate per invocation
	mem    api.Memory
	alloc  api.Function
	handle api.Function
	broken bool
	sleep  sleeper
	// restored reports an instance started from a snapshot.
	restored bool
}

// Restored reports whether the instance started from a snapshot rather than by initialising.
func (i *Instance) Restored() bool { return i.restored }

// initSleep bounds one sleep of a guest outside an invocation (while it initialises).
const initSleep = time.Second

// Instantiate creates a sandbox. For a reactor it instantiates the module and calls _initialize, so the
// first invocation is warm; for a command module it only prepares the configuration.
func (m *Module) Instantiate(ctx context.Context, cfg InstanceConfig) (*Instance, error) {
	if cfg.Version == "" {
		cfg.Version = "$LATEST"
	}
	inst := &Instance{m: m, cfg: cfg}
	if m.abi == ABICommand {
		return inst, nil
	}
	key := ""
	if cfg.Snapshot && m.Snapshottable() {
		key = m.snapshotKey(cfg)
		if img := m.image(key); img != nil {
			mod, err := m.restore(ctx, inst, img)
			if err != nil {
				return nil, fmt.Errorf("runtimes: starting %s from its snapshot: %w", cfg.FunctionName, err)
			}
			inst.bind(mod)
			inst.restored = true
			return inst, nil
		}
	}
	if err := m.e.cfg.Memory.room(m.initialBytes); err != nil {
		return nil, fmt.Errorf("runtimes: instantiating %s: %w", cfg.FunctionName, err)
	}
	mod, err := m.instantiate(ctx, m.moduleConfig(cfg, &inst.sleep))
	if err != nil {
		return nil, fmt.Errorf("runtimes: instantiating %s: %w", cfg.FunctionName, err)
	}
	if init := mod.ExportedFunction(ExportInitialize); init != nil {
		if _, err := init.Call(ctx); err != nil {
			mod.Close(ctx)
			return nil, fmt.Errorf("runtimes: initializing %s: %w", cfg.FunctionName, crashed(err))
		}
	}
	if key != "" {
		if err := m.capture(mod, key); err != nil {
			mod.Close(ctx)
			return nil, fmt.Errorf("runtimes: %s: %w", cfg.FunctionName, err)
		}
	}
	inst.bind(mod)
	return inst, nil
}

// bind makes mod the instance's module.
func (inst *Instance) bind(mod api.Module) {
	inst.mod = mod
	inst.mem = mod.ExportedMemory(ExportMemory)
	inst.alloc = mod.ExportedFunction(ExportAlloc)
	inst.handle = mod.ExportedFunction(ExportHandle)
}

// Broken reports whether the instance trapped or panicked and must not be used again.
func (i *Instance) Broken() bool { return i.broken }

// MaxMemoryUsed is the size of the instance's linear memory, in bytes: WebAssembly memory only
// grows, so it is the most the instance has used. 0 for command modules, instantiated anew for each
// invocation.
func (i *Instance) MaxMemoryUsed() uint64 {
	if i.mod == nil || i.mod.Memory() == nil {
		return 0
	}
	return uint64(i.mod.Memory().Size())
}

// Close releases the instance.
func (i *Instance) Close(ctx context.Context) error {
	i.broken = true
	if i.mod == nil {
		return nil
	}
	return i.mod.Close(ctx)
}

// FunctionError is an error the function itself reported.
type FunctionError struct {
	Type       string   `json:"errorType"`
	Message    string   `json:"errorMessage"`
	StackTrace []string `json:"stackTrace,omitempty"`
}

func (e *FunctionError) Error() string {
	if e.Type == "" {
		return e.Message
	}
	return e.Type + ": " + e.Message
}

// Unwrap makes errors.Is(err, ErrFunction) true.
func (e *FunctionError) Unwrap() error { return ErrFunction }

// crashed wraps the error of a guest that did not return: stopped at its deadline, past its call
// depth, or trapped. Its text keeps the first frames of the guest's stack trace.
func crashed(err error) error {
	err = shortTrace{err}
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(err, ErrCallDepth):
		return err
	}
	return fmt.Errorf("%w: %w", ErrTrap, err)
}

// shortTrace shows an error with at most traceLines lines.
type shortTrace struct{ err error }

const traceLines = 8

func (s shortTrace) Error() string {
	msg := s.err.Error()
	lines := strings.SplitN(msg, "\n", traceLines+1)
	if len(lines) <= traceLines {
		return msg
	}
	more := strings.Count(lines[traceLines], "\n") + 1
	return strings.Join(lines[:traceLines], "\n") + fmt.Sprintf("\n\t… %d more frames", more)
}

func (s shortTrace) Unwrap() error { return s.err }

// Invoke runs the function on event and returns its response. The guest is stopped at its next
// safepoint once ctx ends. A returned error wraps ErrFunction (the function reported an error),
// ErrTrap (it crashed; the instance is now broken), ErrTimeout (ctx ended first; broken too),
// ErrCallDepth (broken too), ErrResponseTooLarge, ErrMemoryBudget (a command module found no room
// to start) or ErrClosed.
func (i *Instance) Invoke(ctx context.Context, meta Meta, event []byte) ([]byte, error) {
	if i.broken {
		return nil, ErrClosed
	}
	if i.cfg.Host != nil {
		ctx = withHost(ctx, i.cfg.Host, meta.OnEffect)
	}
	inv := &invocation{ctx: ctx, turn: meta.Turn}
	ctx = context.WithValue(ctx, invocationKey{}, inv)
	inv.ctx = ctx
	i.sleep.current = inv
	defer func() { i.sleep.current = nil }()
	if i.m.abi == ABICommand {
		return i.invokeCommand(ctx, meta, event)
	}
	return i.invokeReactor(ctx, meta, event)
}

// encodeMeta writes the invocation metadata the guest reads, as JSON. It is written by hand: it is on
// every invocation's path, and encoding/json's reflection was 5% of a busy worker's CPU.
func (i *Instance) encodeMeta(meta Meta) []byte {
	var deadline int64
	if !meta.Deadline.IsZero() {
		deadline = meta.Deadline.UnixMilli()
	}
	b := make([]byte, 0, 160+len(meta.RequestID)+len(i.cfg.FunctionName)+len(meta.TraceParent))
	b = append(b, `{"requestId":`...)
	b = appendJSONString(b, meta.RequestID)
	b = append(b, `,"functionName":`...)
	b = appendJSONString(b, i.cfg.FunctionName)
	b = append(b, `,"functionVersion":`...)
	b = appendJSONString(b, i.cfg.Version)
	b = append(b, `,"memoryLimitInMB":`...)
	b = strconv.AppendInt(b, int64(i.cfg.MemoryMB), 10)
	b = append(b, `,"deadlineMs":`...)
	b = strconv.AppendInt(b, deadline, 10)
	if meta.TraceParent != "" {
		b = append(b, `,"traceparent":`...)
		b = appendJSONString(b, meta.TraceParent)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: plain printable ASCII as it is, anything else through
// encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func (i *Instance) invokeReactor(ctx context.Context, meta Meta, event []byte) ([]byte, error) {
	mb := i.encodeMeta(meta)
	total := uint64(len(mb)) + uint64(len(event))
	if total > 1<<31 {
		return nil, fmt.Errorf("runtimes: event of %d bytes is too large", len(event))
	}
	res, err := i.alloc.Call(ctx, total)
	if err != nil {
		i.broken = true
		return nil, fmt.Errorf("%s: %w", ExportAlloc, crashed(err))
	}
	ptr := uint32(res[0])
	if !i.mem.Write(ptr, mb) || !i.mem.Write(ptr+uint32(len(mb)), event) {
		i.broken = true
		return nil, fmt.Errorf("%w: %s returned an out-of-range buffer", ErrTrap, ExportAlloc)
	}
	res, err = i.handle.Call(ctx, uint64(ptr), uint64(len(mb)), uint64(len(event)))
	if err != nil {
		i.broken = true
		return nil, crashed(err)
	}
	outPtr, outLen := uint32(res[0]>>32), uint32(res[0])
	if outLen == 0 {
		i.broken = true
		return nil, fmt.Errorf("%w: %s returned no output", ErrTrap, ExportHandle)
	}
	view, ok := i.mem.Read(outPtr, outLen)
	if !ok {
		i.broken = true
		return nil, fmt.Errorf("%w: %s returned an out-of-range response", ErrTrap, ExportHandle)
	}
	status, body := view[0], view[1:]
	switch status {
	case statusOK:
		if len(body) > i.m.e.cfg.MaxResponseBytes {
			return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrResponseTooLarge, len(body), i.m.e.cfg.MaxResponseBytes)
		}
		return bytes.Clone(body), nil
	case statusError, statusPanicked:
		if status == statusPanicked {
			i.broken = true
		}
		return nil, decodeFunctionError(truncate(body, 64<<10))
	}
	i.broken = true
	return nil, fmt.Errorf("%w: unknown response status %d", ErrTrap, status)
}

func decodeFunctionError(body []byte) error {
	fe := &FunctionError{}
	if err := json.Unmarshal(body, fe); err != nil || (fe.Message == "" && fe.Type == "") {
		fe.Message = string(truncate(body, 256))
	}
	return fe
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// cappedBuffer keeps at most max bytes and remembers whether more were written.
type cappedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); len(p) > room {
		c.overflow = true
		if room > 0 {
			c.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return c.buf.Write(p)
}

func (i *Instance) invokeCommand(ctx context.Context, meta Meta, event []byte) ([]byte, error) {
	out := &cappedBuffer{max: i.m.e.cfg.MaxResponseBytes}
	cfg := i.cfg
	cfg.Stdout = out
	mc := i.m.moduleConfig(cfg, &i.sleep).
		WithStdin(bytes.NewReader(event)).
		WithEnv("GATEHOUSE_REQUEST_ID", meta.RequestID).
		WithEnv("GATEHOUSE_INVOCATION", string(i.encodeMeta(meta)))
	if err := i.m.e.cfg.Memory.room(i.m.initialBytes); err != nil {
		return nil, err
	}
	// _start is called once the data segments are written, not as a start function.
	mod, err := i.m.instantiate(ctx, mc)
	if err == nil {
		defer mod.Close(ctx)
		_, err = mod.ExportedFunction(ExportStart).Call(ctx)
	}
	if err != nil {
		var exit *sys.ExitError
		if !errors.As(err, &exit) {
			return nil, crashed(err)
		}
		if exit.ExitCode() != 0 {
			return nil, decodeFunctionError(out.buf.Bytes())
		}
	}
	if out.overflow {
		return nil, fmt.Errorf("%w: over %d bytes", ErrResponseTooLarge, out.max)
	}
	return out.buf.Bytes(), nil
}
