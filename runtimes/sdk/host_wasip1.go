//go:build wasip1

package sdk

import (
	"runtime"
	"unsafe"
)

//go:wasmimport gatehouse call
func gatehouseCall(op, ptr, n uint32) uint64

//go:wasmimport gatehouse result
func gatehouseResult(ptr, capacity uint32) uint32

// HostCall performs host call op with request req and returns its status and its result, which a
// call that failed may have too (a message). It is the ABI's call (docs/abi.md), for the SDK's own
// packages; functions use the typed calls.
func HostCall(op uint32, req []byte) (status uint32, result []byte) {
	var ptr uint32
	if len(req) > 0 {
		ptr = uint32(uintptr(unsafe.Pointer(unsafe.SliceData(req))))
	}
	r := gatehouseCall(op, ptr, uint32(len(req)))
	runtime.KeepAlive(req)
	status, n := uint32(r>>32), uint32(r)
	if n == 0 {
		return status, nil
	}
	out := make([]byte, n)
	got := gatehouseResult(uint32(uintptr(unsafe.Pointer(unsafe.SliceData(out)))), n)
	runtime.KeepAlive(out)
	if got != n {
		return 6, nil // internal: the result was lost
	}
	return status, out
}

// hostCall performs a host call and returns its result.
func hostCall(op uint32, req []byte) ([]byte, error) {
	status, out := HostCall(op, req)
	if err := hostStatusError(status); err != nil {
		return nil, err
	}
	return out, nil
}
