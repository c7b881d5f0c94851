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

// hostCall performs a host call and returns its result.
func hostCall(op uint32, req []byte) ([]byte, error) {
	var ptr uint32
	if len(req) > 0 {
		ptr = uint32(uintptr(unsafe.Pointer(unsafe.SliceData(req))))
	}
	r := gatehouseCall(op, ptr, uint32(len(req)))
	runtime.KeepAlive(req)
	status, n := uint32(r>>32), uint32(r)
	if err := hostStatusError(status); err != nil {
		return nil, err
	}
	out := make([]byte, n)
	if n > 0 {
		got := gatehouseResult(uint32(uintptr(unsafe.Pointer(unsafe.SliceData(out)))), n)
		runtime.KeepAlive(out)
		if got != n {
			return nil, ErrHost
		}
	}
	return out, nil
}
