package meter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// This file takes a module's initial memory out of it, so that a host can start an instance from
// memory and globals saved from another, initialised one (a snapshot) instead of from the module's
// data segments and its initialisation function.

// Segment is bytes an instance's memory holds at Offset when it starts.
type Segment struct {
	Offset uint32
	Data   []byte
}

// Detached is a module without its data segments.
type Detached struct {
	// Wasm is the module: no data section, and every global it defines exported as
	// GlobalExport(index) (an export changes no code, only what a host can read and set).
	Wasm []byte
	// Segments are what the data segments wrote, in order, adjacent ones merged: a host writes them
	// into an instance's fresh (zeroed) memory before it runs any of its code.
	Segments []Segment
	// Globals are the indexes of the globals the module defines.
	Globals []uint32
	// TableWrites reports code that changes a table (table.set, table.grow, table.fill, table.copy,
	// table.init): a table is not part of what a snapshot saves, so such a module cannot have one.
	TableWrites bool
}

// ErrNotDetachable means a module's data segments cannot be written by the host: it has a start
// function (which runs before the host could write them), imports its memory, reads its segments
// with memory.init, or places one anywhere but at a constant offset inside its initial memory.
var ErrNotDetachable = errors.New("the module's data cannot be detached")

// GlobalExport is the name Detach exports global index under.
func GlobalExport(index uint32) string {
	return "gatehouse.global." + strconv.FormatUint(uint64(index), 10)
}

// mergeGap is the longest run of zeros between two segments that merging them writes: fewer, longer
// copies (a Go module has tens of thousands of small segments) for a few zeros written again.
const mergeGap = 64

// Detach returns wasm without its data section, for a host to write the segments itself.
func Detach(wasm []byte) (*Detached, error) {
	sections, err := splitSections(wasm)
	if err != nil {
		return nil, err
	}
	// A module Instrument wrote says whether its code writes tables: reading every instruction
	// again would cost as much as the rewrite (34 ms for a Go module).
	d := &Detached{}
	marked := false
	for _, s := range sections {
		if s.id != secCustom {
			continue
		}
		r := reader{b: s.body}
		if r.name() == markerSection && r.err == nil && r.pos < len(r.b) {
			marked, d.TableWrites = true, r.b[r.pos]&markerTableWrites != 0
		}
	}
	var (
		importedGlobals, defined uint32
		minPages                 uint32
		hasMemory                bool
	)
	for _, s := range sections {
		r := reader{b: s.body}
		switch s.id {
		case secImport:
			for range r.u32() {
				r.name()
				r.name()
				switch kind := r.byte(); kind {
				case 0x00:
					r.u32()
				case 0x01:
					r.byte()
					r.limits()
				case 0x02:
					return nil, fmt.Errorf("%w: it imports its memory", ErrNotDetachable)
				case 0x03:
					r.byte()
					r.byte()
					importedGlobals++
				default:
					r.fail(fmt.Sprintf("import kind 0x%x", kind))
				}
			}
		case secMemory:
			if n := r.u32(); n > 0 {
				hasMemory = true
				flags := r.byte()
				minPages = r.u32()
				if flags&1 != 0 {
					r.u32()
				}
			}
		case secGlobal:
			defined = r.u32()
		case secStart:
			return nil, fmt.Errorf("%w: it has a start function", ErrNotDetachable)
		case secDataCnt:
			return nil, fmt.Errorf("%w: it reads its data segments with memory.init", ErrNotDetachable)
		case secCode:
			if !marked {
				if d.TableWrites, err = writesTables(s.body); err != nil {
					return nil, err
				}
			}
		case secData:
			if d.Segments, err = segments(s.body, uint64(minPages)<<16); err != nil {
				return nil, err
			}
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	if len(d.Segments) > 0 && !hasMemory {
		return nil, fmt.Errorf("%w: it has data but no memory", ErrNotDetachable)
	}
	for i := range defined {
		d.Globals = append(d.Globals, importedGlobals+i)
	}

	out := make([]byte, 0, len(wasm))
	out = append(out, wasm[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	hasExport := false
	for _, s := range sections {
		if s.id == secExport {
			hasExport = true
		}
	}
	for _, s := range sections {
		switch {
		case s.id == secData:
			continue
		case s.id == secExport:
			emit(s.id, d.exportGlobals(s.body))
			continue
		case !hasExport && s.id != secCustom && s.id > secExport:
			emit(secExport, d.exportGlobals(nil))
			hasExport = true
		}
		emit(s.id, s.body)
	}
	if !hasExport {
		emit(secExport, d.exportGlobals(nil))
	}
	d.Wasm = out
	return d, nil
}

// exportGlobals returns an export section with the module's exports and one for each global it
// defines.
func (d *Detached) exportGlobals(old []byte) []byte {
	r := reader{b: old}
	var n uint32
	if old != nil {
		n = r.u32()
	}
	out := appendU32(nil, n+uint32(len(d.Globals)))
	out = append(out, old[r.pos:]...)
	for _, g := range d.Globals {
		out = appendName(out, GlobalExport(g))
		out = append(out, 0x03)
		out = appendU32(out, g)
	}
	return out
}

// segments reads the data section: active segments of memory 0 at constant offsets inside the
// initial memory of size bytes.
func segments(body []byte, size uint64) ([]Segment, error) {
	r := reader{b: body}
	var segs []Segment
	for range r.u32() {
		var offset uint32
		switch flags := r.u32(); flags {
		case 0x00:
		case 0x02:
			if mem := r.u32(); mem != 0 && r.err == nil {
				return nil, fmt.Errorf("%w: a data segment of memory %d", ErrNotDetachable, mem)
			}
		default:
			if r.err == nil {
				return nil, fmt.Errorf("%w: a passive data segment", ErrNotDetachable)
			}
		}
		if op := r.byte(); op != opI32Const && r.err == nil {
			return nil, fmt.Errorf("%w: a data segment placed by an expression (0x%02x)", ErrNotDetachable, op)
		}
		offset = uint32(int32(r.s64()))
		if op := r.byte(); op != opEnd && r.err == nil {
			return nil, fmt.Errorf("%w: a data segment placed by an expression", ErrNotDetachable)
		}
		data := r.bytes(int(r.u32()))
		if r.err != nil {
			return nil, r.err
		}
		if uint64(offset)+uint64(len(data)) > size {
			return nil, fmt.Errorf("%w: a data segment at %d (%d bytes) outside the initial memory", ErrNotDetachable, offset, len(data))
		}
		if len(data) == 0 {
			continue
		}
		if n := len(segs); n > 0 {
			last := &segs[n-1]
			end := uint64(last.Offset) + uint64(len(last.Data))
			if offset >= last.Offset && uint64(offset) <= end+mergeGap {
				if grow := uint64(offset) + uint64(len(data)); grow > end {
					last.Data = append(last.Data, make([]byte, grow-end)...)
				}
				copy(last.Data[offset-last.Offset:], data)
				continue
			}
		}
		segs = append(segs, Segment{Offset: offset, Data: append([]byte(nil), data...)})
	}
	return segs, r.err
}

// writesTables reports whether any function body has an instruction that changes a table.
func writesTables(body []byte) (bool, error) {
	r := reader{b: body}
	for range r.u32() {
		fn := reader{b: r.bytes(int(r.u32()))}
		for range fn.u32() {
			fn.u32()
			fn.byte()
		}
		for !fn.done() {
			switch fn.peek() {
			case opTableSet:
				return true, nil
			case opPrefixFC:
				sub := reader{b: fn.b, pos: fn.pos + 1}
				if tableWriteFC(sub.u32()) {
					return true, nil
				}
			}
			if err := skipInstruction(&fn); err != nil {
				return false, err
			}
		}
		if r.err != nil {
			return false, r.err
		}
	}
	return false, r.err
}

// splitSections checks the header and returns the sections.
func splitSections(wasm []byte) ([]section, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, fmt.Errorf("%w: no WebAssembly header", ErrMalformed)
	}
	if v := binary.LittleEndian.Uint32(wasm[4:8]); v != 1 {
		return nil, fmt.Errorf("%w: binary format version %d", ErrUnsupported, v)
	}
	var sections []section
	r := reader{b: wasm, pos: 8}
	for !r.done() {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, r.err
		}
		sections = append(sections, section{id: id, body: body})
	}
	return sections, nil
}

// tableWriteFC reports the 0xfc instructions that change a table: table.init, table.copy,
// table.grow and table.fill.
func tableWriteFC(sub uint32) bool { return sub == 12 || sub == 14 || sub == 15 || sub == 17 }
