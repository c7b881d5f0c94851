package runtimes

// heapMemory is a linear memory on the Go heap that grows by copying: the fallback when address space
// cannot be reserved.
type heapMemory struct {
	buf []byte
}

// Reallocate grows the memory to size bytes.
func (m *heapMemory) Reallocate(size uint64) []byte {
	if size > uint64(cap(m.buf)) {
		grown := make([]byte, size, max(size, 2*uint64(cap(m.buf))))
		copy(grown, m.buf)
		m.buf = grown
	}
	m.buf = m.buf[:size]
	return m.buf
}

// Free drops the buffer.
func (m *heapMemory) Free() { m.buf = nil }
