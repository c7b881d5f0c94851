//go:build !wasip1

package sdk

// hostCall is not available outside a WebAssembly sandbox run by Gatehouse.
func hostCall(op uint32, req []byte) ([]byte, error) { return nil, ErrUnavailable }
