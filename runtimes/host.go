package runtimes

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// HostModule is the import module of Gatehouse's host calls: what a function may ask of Gatehouse
// besides WASI. It exports two functions:
//
//	call(op i32, req_ptr i32, req_len i32) -> i64
//	result(ptr i32, cap i32) -> i32
//
// call performs operation op on the request in guest memory and returns the status in the high 32
// bits and the length of the result in the low 32. The guest then copies the result into a buffer of
// its own with result (which returns the number of bytes copied); a result not fetched is dropped at
// the next call. docs/abi.md describes the operations and their encodings.
const HostModule = "gatehouse"

// Host call names.
const (
	HostCall   = "call"
	HostResult = "result"
)

// Host operations.
const (
	OpPostToConnection = 1
	OpGetConnection    = 2
	OpDeleteConnection = 3
	OpBroadcast        = 4
	OpKVGet            = 10
	OpKVPut            = 11
	OpKVCreate         = 12
	OpKVDelete         = 13
	OpKVList           = 14
)

// Host call statuses.
const (
	HostOK          = 0
	HostNotFound    = 1 // the connection is gone, the key does not exist
	HostTooLarge    = 2 // the data is over a limit
	HostLimit       = 3 // the client is not reading its messages
	HostInvalid     = 4 // the request is malformed (bad id, key, encoding)
	HostExists      = 5 // the key exists (create)
	HostInternal    = 6 // Gatehouse could not do it; trying again may work
	HostUnavailable = 7 // this function has no host (host calls are not available here)
)

// Host errors: a Host returns errors wrapping these, which the guest sees as statuses.
var (
	ErrHostNotFound = errors.New("not found")
	ErrHostTooLarge = errors.New("too large")
	ErrHostLimit    = errors.New("limit exceeded")
	ErrHostInvalid  = errors.New("invalid request")
	ErrHostExists   = errors.New("exists")
)

// Host performs the host calls of a function's invocations. The worker implements it with the
// stack's connections and key-value store.
type Host interface {
	PostToConnection(ctx context.Context, id string, data []byte) error
	// GetConnection returns the connection as JSON, shaped as the @connections GET answer.
	GetConnection(ctx context.Context, id string) ([]byte, error)
	DeleteConnection(ctx context.Context, id string) error
	// Broadcast posts data to every connection in ids and returns the ids that were gone.
	Broadcast(ctx context.Context, ids []string, data []byte) (gone []string, err error)
	KVGet(ctx context.Context, key string) ([]byte, error)
	KVPut(ctx context.Context, key string, value []byte) error
	// KVCreate stores value under key unless the key exists; a ttl over 0 expires the key.
	KVCreate(ctx context.Context, key string, value []byte, ttl time.Duration) error
	KVDelete(ctx context.Context, key string) error
	KVList(ctx context.Context, prefix string) ([]string, error)
}

// maxHostRequest bounds a host call's request in guest memory.
const maxHostRequest = 16 << 20

// hostState is the host side of one invocation: its Host, the hook that runs before its first call
// with effects, and the result not yet fetched.
type hostState struct {
	host     Host
	onEffect func()
	effected bool
	result   []byte
}

type hostKey struct{}

func withHost(ctx context.Context, h Host, onEffect func()) context.Context {
	return context.WithValue(ctx, hostKey{}, &hostState{host: h, onEffect: onEffect})
}

// instantiateHostModule adds the host module to rt.
func instantiateHostModule(ctx context.Context, rt wazero.Runtime, fuel uint32) error {
	_, err := rt.NewHostModuleBuilder(HostModule).
		NewFunctionBuilder().WithGoModuleFunction(hostYield(fuel),
		[]api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).
		Export(HostYield).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostCall),
		[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}).
		Export(HostCall).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostResult),
		[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).
		Export(HostResult).
		Instantiate(ctx)
	return err
}

func hostCall(ctx context.Context, mod api.Module, stack []uint64) {
	op, ptr, n := uint32(stack[0]), uint32(stack[1]), uint32(stack[2])
	st, _ := ctx.Value(hostKey{}).(*hostState)
	if st == nil || st.host == nil {
		stack[0] = uint64(HostUnavailable) << 32
		return
	}
	st.result = nil
	if n > maxHostRequest {
		stack[0] = uint64(HostTooLarge) << 32
		return
	}
	req, ok := mod.Memory().Read(ptr, n)
	if !ok {
		stack[0] = uint64(HostInvalid) << 32
		return
	}
	// The request lives in guest memory, which the call may not keep.
	out, err := st.do(ctx, op, append([]byte(nil), req...))
	status := hostStatus(err)
	if status == HostOK {
		st.result = out
	}
	stack[0] = uint64(status)<<32 | uint64(len(st.result))
}

func hostResult(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, capacity := uint32(stack[0]), uint32(stack[1])
	st, _ := ctx.Value(hostKey{}).(*hostState)
	if st == nil || uint32(len(st.result)) > capacity || !mod.Memory().Write(ptr, st.result) {
		stack[0] = 0
		return
	}
	stack[0] = uint64(len(st.result))
	st.result = nil
}

func hostStatus(err error) uint32 {
	switch {
	case err == nil:
		return HostOK
	case errors.Is(err, ErrHostNotFound):
		return HostNotFound
	case errors.Is(err, ErrHostTooLarge):
		return HostTooLarge
	case errors.Is(err, ErrHostLimit):
		return HostLimit
	case errors.Is(err, ErrHostInvalid):
		return HostInvalid
	case errors.Is(err, ErrHostExists):
		return HostExists
	}
	return HostInternal
}

// effect runs the invocation's hook before its first call with effects outside the sandbox.
func (st *hostState) effect() {
	if !st.effected {
		st.effected = true
		if st.onEffect != nil {
			st.onEffect()
		}
	}
}

// do decodes and performs one operation. Requests are binary: a string is a little-endian u16
// length and its bytes; data is the rest of the request.
func (st *hostState) do(ctx context.Context, op uint32, req []byte) ([]byte, error) {
	r := hostReader{b: req}
	switch op {
	case OpPostToConnection:
		id, data := r.str(), r.rest()
		if r.bad {
			return nil, ErrHostInvalid
		}
		st.effect()
		return nil, st.host.PostToConnection(ctx, id, data)
	case OpGetConnection:
		id := r.str()
		if r.bad || !r.done() {
			return nil, ErrHostInvalid
		}
		return st.host.GetConnection(ctx, id)
	case OpDeleteConnection:
		id := r.str()
		if r.bad || !r.done() {
			return nil, ErrHostInvalid
		}
		st.effect()
		return nil, st.host.DeleteConnection(ctx, id)
	case OpBroadcast:
		count := int(r.u32())
		if r.bad || count > len(req)/2 {
			return nil, ErrHostInvalid
		}
		ids := make([]string, 0, count)
		for range count {
			ids = append(ids, r.str())
		}
		data := r.rest()
		if r.bad {
			return nil, ErrHostInvalid
		}
		st.effect()
		gone, err := st.host.Broadcast(ctx, ids, data)
		if err != nil {
			return nil, err
		}
		return json.Marshal(struct {
			Sent int      `json:"sent"`
			Gone []string `json:"gone"`
		}{len(ids) - len(gone), append([]string{}, gone...)})
	case OpKVGet:
		key := r.str()
		if r.bad || !r.done() {
			return nil, ErrHostInvalid
		}
		return st.host.KVGet(ctx, key)
	case OpKVPut:
		key, value := r.str(), r.rest()
		if r.bad {
			return nil, ErrHostInvalid
		}
		st.effect()
		return nil, st.host.KVPut(ctx, key, value)
	case OpKVCreate:
		key, ttlMs, value := r.str(), r.u32(), r.rest()
		if r.bad {
			return nil, ErrHostInvalid
		}
		st.effect()
		return nil, st.host.KVCreate(ctx, key, value, time.Duration(ttlMs)*time.Millisecond)
	case OpKVDelete:
		key := r.str()
		if r.bad || !r.done() {
			return nil, ErrHostInvalid
		}
		st.effect()
		return nil, st.host.KVDelete(ctx, key)
	case OpKVList:
		prefix := r.str()
		if r.bad || !r.done() {
			return nil, ErrHostInvalid
		}
		keys, err := st.host.KVList(ctx, prefix)
		if err != nil {
			return nil, err
		}
		return json.Marshal(append([]string{}, keys...))
	}
	return nil, fmt.Errorf("%w: unknown operation %d", ErrHostInvalid, op)
}

// hostReader decodes a host call's request.
type hostReader struct {
	b   []byte
	bad bool
}

func (r *hostReader) str() string {
	if len(r.b) < 2 {
		r.bad = true
		return ""
	}
	n := int(binary.LittleEndian.Uint16(r.b))
	if len(r.b) < 2+n {
		r.bad = true
		return ""
	}
	s := string(r.b[2 : 2+n])
	r.b = r.b[2+n:]
	return s
}

func (r *hostReader) u32() uint32 {
	if len(r.b) < 4 {
		r.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *hostReader) rest() []byte {
	b := r.b
	r.b = nil
	return b
}

func (r *hostReader) done() bool { return len(r.b) == 0 }
