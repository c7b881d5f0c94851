package runtimes

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"gatehouse.dev/gatehouse/internal/spec"
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
	OpHTTP             = 20
	OpPublish          = 30
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
	HostNotAllowed  = 8 // the outbound request is not allowed for this function
	HostTimeout     = 9 // the invocation's deadline came first
)

// Host errors: a Host returns errors wrapping these, which the guest sees as statuses.
var (
	ErrHostNotFound = errors.New("not found")
	ErrHostTooLarge = errors.New("too large")
	ErrHostLimit    = errors.New("limit exceeded")
	ErrHostInvalid  = errors.New("invalid request")
	ErrHostExists   = errors.New("exists")
	// ErrHostNotAllowed is an outbound request the function's allow-list does not allow.
	ErrHostNotAllowed = errors.New("not allowed")
)

// MaxHTTPCalls bounds the outbound HTTP requests of one invocation; one more is refused with
// HostLimit.
const MaxHTTPCalls = 100

// HTTPRequest is an outbound HTTP request a guest asks for.
type HTTPRequest struct {
	Method, URL string
	Header      http.Header
	Body        []byte
	// Function and Allow are the function whose invocation asks, and where its requests may go: set
	// by the worker, never read from the guest.
	Function string
	Allow    []spec.OutboundHost
}

// HTTPResponse is the answer to an HTTPRequest.
type HTTPResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

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
	// HTTP makes an outbound HTTP request for the function of the invocation. Errors wrap
	// ErrHostNotAllowed (not in the function's allow-list), ErrHostTooLarge (the response is over the
	// limit), ErrHostInvalid (a malformed request) or context.DeadlineExceeded; their messages reach
	// the guest.
	HTTP(ctx context.Context, req HTTPRequest) (HTTPResponse, error)
	// Publish stores a message on a subject of the stack's event bus for the function of the
	// invocation. Errors wrap ErrHostNotAllowed (not in the function's allowedPublishSubjects),
	// ErrHostTooLarge or ErrHostInvalid (a malformed subject).
	Publish(ctx context.Context, req PublishRequest) error
}

// PublishRequest is a message a guest publishes.
type PublishRequest struct {
	Subject string
	Data    []byte
	// Function and Allow are the function whose invocation asks, and the subjects it may publish
	// on: set by the worker, never read from the guest.
	Function string
	Allow    []string
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
	// tail follows result: an outbound response's body, written into guest memory from where the
	// response was read, without another copy.
	tail []byte
	// httpCalls counts the invocation's outbound requests.
	httpCalls int
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
	st.result, st.tail = nil, nil
	if n > maxHostRequest {
		stack[0] = uint64(HostTooLarge) << 32
		return
	}
	req, ok := mod.Memory().Read(ptr, n)
	if !ok {
		stack[0] = uint64(HostInvalid) << 32
		return
	}
	// The request lives in guest memory, which the call may not keep: it is copied, except an
	// outbound request's, whose body is sent from there (the guest waits, and the outbound client
	// returns only once its transport is done with the body).
	if op != OpHTTP {
		req = append([]byte(nil), req...)
	}
	out, err := st.do(ctx, op, req)
	if ctx.Err() != nil {
		// The invocation ended while the call waited (its deadline): the guest stops here, as at a
		// safepoint, rather than run on past it.
		panic(stopped(ctx))
	}
	status := hostStatus(err)
	switch {
	case status == HostOK:
		st.result = out
	case op == OpHTTP:
		// The guest learns why an outbound request failed: the result is the message.
		st.result, st.tail = []byte(err.Error()), nil
	}
	stack[0] = uint64(status)<<32 | uint64(len(st.result)+len(st.tail))
}

func hostResult(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, capacity := uint32(stack[0]), uint32(stack[1])
	st, _ := ctx.Value(hostKey{}).(*hostState)
	if st == nil {
		stack[0] = 0
		return
	}
	n := uint32(len(st.result) + len(st.tail))
	if n > capacity || !mod.Memory().Write(ptr, st.result) || !mod.Memory().Write(ptr+uint32(len(st.result)), st.tail) {
		stack[0] = 0
		return
	}
	stack[0] = uint64(n)
	st.result, st.tail = nil, nil
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
	case errors.Is(err, ErrHostNotAllowed):
		return HostNotAllowed
	case errors.Is(err, context.DeadlineExceeded):
		return HostTimeout
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
	case OpPublish:
		subject, data := r.str(), r.rest()
		if r.bad {
			return nil, ErrHostInvalid
		}
		st.effect()
		return nil, st.host.Publish(ctx, PublishRequest{Subject: subject, Data: data})
	case OpHTTP:
		hr, err := decodeHTTPRequest(req)
		if err != nil {
			return nil, err
		}
		if st.httpCalls >= MaxHTTPCalls {
			return nil, fmt.Errorf("%w: an invocation makes at most %d outbound requests", ErrHostLimit, MaxHTTPCalls)
		}
		st.httpCalls++
		st.effect()
		resp, err := st.host.HTTP(ctx, hr)
		if err != nil {
			return nil, err
		}
		st.tail = resp.Body
		return encodeHTTPHead(resp), nil
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

// Outbound HTTP. A request is: method (string), URL (string), the number of header fields (u32),
// each field's name and value (strings), and the body (the rest). A response is: the status (u32),
// the number of header fields (u32), each field's name and value, and the body (the rest). Strings
// are a u16 little-endian length and their bytes, as in the other operations; header values longer
// than 65535 bytes are not sent.

// decodeHTTPRequest decodes an OpHTTP request. The body is the request's own tail, not a copy.
func decodeHTTPRequest(req []byte) (HTTPRequest, error) {
	r := hostReader{b: req}
	hr := HTTPRequest{Method: r.str(), URL: r.str()}
	n := r.u32()
	if r.bad || int(n) > len(req)/4 {
		return HTTPRequest{}, fmt.Errorf("%w: a malformed outbound request", ErrHostInvalid)
	}
	if n > 0 {
		hr.Header = make(http.Header, n)
	}
	for range n {
		k, v := r.str(), r.str()
		if r.bad {
			return HTTPRequest{}, fmt.Errorf("%w: a malformed outbound request", ErrHostInvalid)
		}
		hr.Header[k] = append(hr.Header[k], v)
	}
	hr.Body = r.rest()
	return hr, nil
}

// encodeHTTPHead encodes an OpHTTP result but its body, which follows it.
func encodeHTTPHead(resp HTTPResponse) []byte {
	size := 8
	fields := 0
	for k, vs := range resp.Header {
		for _, v := range vs {
			if len(k) <= 0xffff && len(v) <= 0xffff {
				size += 4 + len(k) + len(v)
				fields++
			}
		}
	}
	b := make([]byte, 0, size)
	b = binary.LittleEndian.AppendUint32(b, uint32(resp.Status))
	b = binary.LittleEndian.AppendUint32(b, uint32(fields))
	for k, vs := range resp.Header {
		for _, v := range vs {
			if len(k) <= 0xffff && len(v) <= 0xffff {
				b = appendStr(b, k)
				b = appendStr(b, v)
			}
		}
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}
