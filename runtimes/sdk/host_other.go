//go:build !wasip1

package sdk

// hostCall is not available outside a WebAssembly sandbox run by Gatehouse.
func hostCall(op uint32, req []byte) ([]byte, error) { return nil, ErrUnavailable }

// HostCall is not available outside a WebAssembly sandbox run by Gatehouse: every call answers
// status 7 (unavailable).
func HostCall(op uint32, req []byte) (status uint32, result []byte) { return 7, nil }
