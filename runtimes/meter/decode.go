package meter

import (
	"fmt"
	"math"
)

// This file decodes and encodes the binary format: numbers, names, and skipping whole instructions.

// skipBlockType reads a block type: empty, a value type, or a type index (a signed 33-bit number).
func skipBlockType(r *reader) error {
	b := r.peek()
	if b == blockNil || isValType(b) {
		r.byte()
		return r.err
	}
	r.s64()
	return r.err
}

func isValType(b byte) bool {
	switch b {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		return true
	}
	return false
}

// Immediates of one-byte opcodes.
const (
	immNone = iota
	immBad
	immBlock
	immIndex  // one LEB128 number
	immIndex2 // two (call_indirect, a memory argument)
	immByte
	immBrTable
	immSelect
	immF32
	immF64
	immFC
	immFD
)

var immediates = func() (t [256]uint8) {
	for op := range t {
		switch {
		case op <= 0x01, op == opElse, op == opEnd, op == opReturn, op == 0x1a, op == 0x1b, op == 0xd1,
			op >= 0x45 && op <= 0xc4:
			t[op] = immNone
		case op == opBlock, op == opLoop, op == opIf:
			t[op] = immBlock
		case op == opBr, op == 0x0d, op == opCall, op >= 0x20 && op <= 0x26, op == opRefFunc,
			op == opI32Const, op == 0x42:
			t[op] = immIndex
		case op == 0x11, op >= 0x28 && op <= 0x3e:
			t[op] = immIndex2
		case op == 0x3f, op == 0x40, op == 0xd0:
			t[op] = immByte
		case op == 0x0e:
			t[op] = immBrTable
		case op == 0x1c:
			t[op] = immSelect
		case op == 0x43:
			t[op] = immF32
		case op == 0x44:
			t[op] = immF64
		case op == opPrefixFC:
			t[op] = immFC
		case op == 0xfd:
			t[op] = immFD
		default:
			t[op] = immBad
		}
	}
	return t
}()

// skipLEB skips one LEB128 number (of any width up to 64 bits).
func (r *reader) skipLEB() {
	for i := r.pos; i < len(r.b) && i < r.pos+10; i++ {
		if r.b[i]&0x80 == 0 {
			r.pos = i + 1
			return
		}
	}
	r.fail("bad number")
}

// skipInstruction reads one instruction and its immediates.
func skipInstruction(r *reader) error {
	op := r.byte()
	if r.err != nil {
		return r.err
	}
	switch immediates[op] {
	case immNone:
	case immBlock:
		return skipBlockType(r)
	case immIndex:
		r.skipLEB()
	case immIndex2:
		r.skipLEB()
		r.skipLEB()
	case immByte:
		r.byte()
	case immBrTable:
		for range r.u32() + 1 {
			r.skipLEB()
		}
	case immSelect:
		r.bytes(int(r.u32()))
	case immF32:
		r.bytes(4)
	case immF64:
		r.bytes(8)
	case immFC:
		switch sub := r.u32(); {
		case sub <= 7:
		case sub == 8:
			r.u32()
			r.byte()
		case sub == 9, sub == 13, sub >= 15 && sub <= 17:
			r.u32()
		case sub == fcMemoryCopy:
			r.byte()
			r.byte()
		case sub == fcMemoryFill:
			r.byte()
		case sub == 12, sub == 14:
			r.u32()
			r.u32()
		default:
			if r.err == nil {
				return fmt.Errorf("%w: instruction 0xfc %d", ErrUnsupported, sub)
			}
		}
	case immFD:
		switch sub := r.u32(); {
		case sub <= 11, sub == 92, sub == 93:
			r.u32()
			r.u32()
		case sub == 12, sub == 13:
			r.bytes(16)
		case sub >= 21 && sub <= 34:
			r.byte()
		case sub >= 84 && sub <= 91:
			r.u32()
			r.u32()
			r.byte()
		case sub > 255:
			if r.err == nil {
				return fmt.Errorf("%w: instruction 0xfd %d", ErrUnsupported, sub)
			}
		}
	default:
		return fmt.Errorf("%w: instruction 0x%02x", ErrUnsupported, op)
	}
	return r.err
}

// reader decodes the binary format; the first error sticks and later reads return zeros.
type reader struct {
	b   []byte
	pos int
	err error
}

func (r *reader) done() bool { return r.err != nil || r.pos >= len(r.b) }

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at offset %d", ErrMalformed, what, r.pos)
	}
}

func (r *reader) peek() byte {
	if r.err != nil || r.pos >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	return r.b[r.pos]
}

func (r *reader) byte() byte {
	b := r.peek()
	if r.err == nil {
		r.pos++
	}
	return b
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.pos {
		r.fail("length past the end")
		return nil
	}
	b := r.b[r.pos : r.pos+n]
	r.pos += n
	return b
}

func (r *reader) u32() uint32 {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		b := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(b&0x7f) << shift
		if b&0x80 == 0 {
			if v > math.MaxUint32 {
				r.fail("number too large")
				return 0
			}
			return uint32(v)
		}
	}
	r.fail("number too long")
	return 0
}

// s64 reads a signed LEB128 number of up to 64 bits.
func (r *reader) s64() int64 {
	var v int64
	for shift := 0; shift < 70; shift += 7 {
		b := r.byte()
		if r.err != nil {
			return 0
		}
		v |= int64(b&0x7f) << shift
		if b&0x80 == 0 {
			if shift+7 < 64 && b&0x40 != 0 {
				v |= -1 << (shift + 7)
			}
			return v
		}
	}
	r.fail("number too long")
	return 0
}

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

func (r *reader) limits() {
	switch flags := r.byte(); flags {
	case 0x00:
		r.u32()
	case 0x01, 0x03: // with a maximum (0x03: shared)
		r.u32()
		r.u32()
	case 0x02:
		r.u32()
	default:
		r.fail(fmt.Sprintf("limits flags 0x%x", flags))
	}
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendS32(b []byte, v int32) []byte { return appendS64(b, int64(v)) }

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}
