//go:build wasip1 && gatehouse_reactor

package sdk

import "unsafe"

// Buffers shared with the host. They stay referenced between calls so the garbage collector keeps them.
var (
	inbox  []byte
	outbox []byte
)

//go:wasmexport gatehouse_alloc
func gatehouseAlloc(size uint32) uint32 {
	if cap(inbox) < int(size) {
		inbox = make([]byte, size)
	}
	inbox = inbox[:size]
	if size == 0 {
		inbox = inbox[:cap(inbox)]
		if len(inbox) == 0 {
			inbox = make([]byte, 1)
		}
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(inbox))))
}

//go:wasmexport gatehouse_handle
func gatehouseHandle(ptr, metaLen, eventLen uint32) uint64 {
	// ptr is the buffer gatehouse_alloc returned.
	in := inbox[:metaLen+eventLen]
	var inv Invocation
	if err := parseInvocation(in[:metaLen], &inv); err != nil {
		return reply(statusError, encodeError(err))
	}
	event := in[metaLen:]
	// The response is appended to the outbox after its status byte, where the host reads it.
	outbox = append(outbox[:0], statusOK)
	status, body := byte(statusOK), []byte(nil)
	func() {
		defer func() {
			if v := recover(); v != nil {
				status, body = statusPanicked, encodePanic(v)
			}
		}()
		out, err := invoke(inv, event, outbox)
		if err != nil {
			status, body = statusError, encodeError(err)
			return
		}
		outbox = out
	}()
	if status != statusOK {
		return reply(status, body)
	}
	return outboxReply()
}

// gatehouseRestored runs the AfterRestore hooks once an instance has started from a snapshot.
//
//go:wasmexport gatehouse_restored
func gatehouseRestored() {
	for _, f := range state.afterRestore {
		f()
	}
}

const (
	statusOK       = 0
	statusError    = 1
	statusPanicked = 2
)

func reply(status byte, body []byte) uint64 {
	outbox = append(append(outbox[:0], status), body...)
	return outboxReply()
}

// outboxReply is where the outbox is and how long, for the host.
func outboxReply() uint64 {
	ptr := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(outbox))))
	return uint64(ptr)<<32 | uint64(len(outbox))
}
