// Package meter rewrites a WebAssembly module so that its code can be stopped and bounded: the
// rewritten module counts down a fuel counter at every function entry and loop header (and by length
// at memory.copy and memory.fill), and calls a host function when the counter runs out; it also
// counts call depth and calls the same host function when the depth runs out.
//
// Compiled guest code has no Go safepoints: a guest that runs long without calling the host holds its
// thread and stalls the Go runtime's stop-the-world. The host function this package makes a guest
// call is such a safepoint, and the place where a host can end an invocation at its deadline, give
// its turn up, or refuse a call that recurses too deep. The counter is kept in a global of the module
// and decremented inline, so the cost is a few instructions per entry and loop iteration, not a call
// into Go.
//
// wazero has no hook into its compiler, so this is a rewrite of the binary before it is compiled.
// Adding an import shifts the index of every function the module defines; the rewrite fixes every
// place a function index appears: calls, ref.func, element segments, exports, the start function,
// global initialisers and the name section. It is hand-written because no maintained Go library
// decodes and re-encodes WebAssembly code bodies (wazero keeps its decoder internal).
package meter

import (
	"errors"
	"fmt"
	"math"
)

// Version names what Instrument writes: caches of rewritten modules include it in their keys. Add one
// whenever a change to this package changes its output.
const Version = 4

// Config says what the rewrite inserts.
type Config struct {
	// ImportModule and ImportName name the host function the guest calls:
	//
	//	(func (param $reason i32) (result i32))
	//
	// With reason ReasonFuel the counter ran out; the host returns the new fuel. With ReasonDepth the
	// call depth ran out; the host should not return (it fails the call), and what it returns is
	// ignored.
	ImportModule, ImportName string
	// Fuel is the counter's value when an instance starts.
	Fuel int32
	// MaxDepth bounds how deep calls may nest, counting a call to a function with n parameters and
	// locals as 1+n/16 calls: what bounds is the size of the call stack.
	MaxDepth int32
	// BulkShift sets what memory.copy and memory.fill cost: one unit of fuel per 1<<BulkShift bytes.
	BulkShift uint8
}

// Reasons the host function is called with.
const (
	ReasonFuel  = 0
	ReasonDepth = 1
)

// ErrMalformed means the module could not be decoded.
var ErrMalformed = errors.New("malformed WebAssembly module")

// ErrUnsupported means the module uses an instruction or form the rewrite does not know.
var ErrUnsupported = errors.New("unsupported WebAssembly feature")

const (
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secFunction = 3
	secMemory   = 5
	secGlobal   = 6
	secExport   = 7
	secStart    = 8
	secElement  = 9
	secCode     = 10
	secData     = 11
	secDataCnt  = 12
)

type section struct {
	id   byte
	body []byte
}

// funcType is a function type's parameter and result types.
type funcType struct {
	params, results []byte
}

// rewriter holds what the rewrite of one module learns and makes.
type rewriter struct {
	cfg      Config
	types    []funcType
	funcs    []uint32 // type index of each defined function
	nImports uint32   // imported functions (the new import's index)
	nGlobals uint32   // imported and defined globals before the new ones
	hostType uint32   // type index of the host function
	fuel     uint32   // global index of the fuel counter
	depth    uint32   // global index of the depth counter
	// blockTypes holds the types added for blocks with several results, by result list.
	blockTypes map[string]uint32
	newTypes   []funcType
	// tableWrites is set when a body has an instruction that changes a table.
	tableWrites bool
}

// markerSection names the custom section Instrument adds, which says what the rewrite saw of the
// code so that Detach need not read it again: one byte, markerTableWrites set when a function
// changes a table.
const (
	markerSection     = "gatehouse.meter"
	markerTableWrites = 1
)

// Instrument returns wasm rewritten as Config says. It does not validate the module beyond what it
// must decode; the compiler does.
func Instrument(wasm []byte, cfg Config) ([]byte, error) {
	sections, err := splitSections(wasm)
	if err != nil {
		return nil, err
	}
	rw := &rewriter{cfg: cfg, blockTypes: map[string]uint32{}}
	if err := rw.survey(sections); err != nil {
		return nil, err
	}
	return rw.rewrite(sections)
}

// survey reads the types, imports, functions and globals.
func (rw *rewriter) survey(sections []section) error {
	for _, s := range sections {
		r := reader{b: s.body}
		switch s.id {
		case secType:
			for range r.u32() {
				if form := r.byte(); form != 0x60 && r.err == nil {
					return fmt.Errorf("%w: type form 0x%x", ErrUnsupported, form)
				}
				params := r.bytes(int(r.u32()))
				results := r.bytes(int(r.u32()))
				rw.types = append(rw.types, funcType{params: params, results: results})
			}
		case secImport:
			for range r.u32() {
				mod, name := r.name(), r.name()
				if mod == rw.cfg.ImportModule && name == rw.cfg.ImportName {
					return fmt.Errorf("%w: the module imports %s.%s, which Gatehouse reserves", ErrUnsupported, mod, name)
				}
				switch kind := r.byte(); kind {
				case 0x00:
					r.u32()
					rw.nImports++
				case 0x01: // table: reftype, limits
					r.byte()
					r.limits()
				case 0x02:
					r.limits()
				case 0x03:
					r.byte()
					r.byte()
					rw.nGlobals++
				default:
					if r.err == nil {
						return fmt.Errorf("%w: import kind 0x%x", ErrUnsupported, kind)
					}
				}
			}
		case secFunction:
			for range r.u32() {
				rw.funcs = append(rw.funcs, r.u32())
			}
		case secGlobal:
			n := r.u32()
			rw.nGlobals += n
		}
		if r.err != nil {
			return r.err
		}
	}
	for _, t := range rw.funcs {
		if int(t) >= len(rw.types) {
			return fmt.Errorf("%w: function type %d out of range", ErrMalformed, t)
		}
	}
	rw.hostType = rw.addType(funcType{params: []byte{valI32}, results: []byte{valI32}})
	rw.fuel = rw.nGlobals
	rw.depth = rw.nGlobals + 1
	return nil
}

// addType appends a type and returns its index.
func (rw *rewriter) addType(t funcType) uint32 {
	rw.newTypes = append(rw.newTypes, t)
	return uint32(len(rw.types) + len(rw.newTypes) - 1)
}

// shift maps a function index of the original module to the rewritten one.
func (rw *rewriter) shift(idx uint32) uint32 {
	if idx >= rw.nImports {
		return idx + 1
	}
	return idx
}

// rewrite encodes the module anew, section by section.
func (rw *rewriter) rewrite(sections []section) ([]byte, error) {
	// The code is rewritten first: it may add types for blocks.
	var code []byte
	for _, s := range sections {
		if s.id == secCode {
			var err error
			if code, err = rw.code(s.body); err != nil {
				return nil, err
			}
		}
	}
	size := 64
	for _, s := range sections {
		size += len(s.body) + 6
	}
	out := make([]byte, 0, size+len(code)+size/64)
	out = append(out, "\x00asm\x01\x00\x00\x00"...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	has := map[byte]bool{}
	for _, s := range sections {
		has[s.id] = true
	}
	for _, s := range sections {
		// Sections the module lacks but the rewrite needs go where their id says.
		if !has[secType] && s.id != secCustom && s.id > secType {
			emit(secType, rw.typeSection(nil))
			has[secType] = true
		}
		if !has[secImport] && s.id != secCustom && s.id > secImport {
			emit(secImport, rw.importSection(nil))
			has[secImport] = true
		}
		if !has[secGlobal] && s.id != secCustom && s.id > secGlobal {
			emit(secGlobal, rw.globalSection())
			has[secGlobal] = true
		}
		var body []byte
		var err error
		switch s.id {
		case secType:
			body = rw.typeSection(s.body)
		case secImport:
			body = rw.importSection(s.body)
		case secGlobal:
			body, err = rw.globalSectionFrom(s.body)
		case secExport:
			body, err = rw.exportSection(s.body)
		case secStart:
			r := reader{b: s.body}
			body, err = appendU32(nil, rw.shift(r.u32())), r.err
		case secElement:
			body, err = rw.elementSection(s.body)
		case secCode:
			body = code
		case secCustom:
			r := reader{b: s.body}
			name := r.name()
			if r.err != nil {
				return nil, r.err
			}
			switch {
			case name == "name":
				if body, err = rw.nameSection(s.body, r.pos); err != nil {
					// A name section is only for people; one that cannot be read is left out.
					body, err = nil, nil
					continue
				}
			case len(name) > 7 && name[:7] == ".debug_":
				// DWARF locates code by offset, and the offsets changed: left out rather than wrong.
				continue
			default:
				body = s.body
			}
		default:
			body = s.body
		}
		if err != nil {
			return nil, err
		}
		emit(s.id, body)
	}
	if !has[secType] {
		emit(secType, rw.typeSection(nil))
	}
	if !has[secImport] {
		emit(secImport, rw.importSection(nil))
	}
	if !has[secGlobal] {
		emit(secGlobal, rw.globalSection())
	}
	var flags byte
	if rw.tableWrites {
		flags |= markerTableWrites
	}
	emit(secCustom, append(appendName(nil, markerSection), flags))
	return out, nil
}

func (rw *rewriter) typeSection(old []byte) []byte {
	r := reader{b: old}
	var n uint32
	if old != nil {
		n = r.u32()
	}
	out := appendU32(nil, n+uint32(len(rw.newTypes)))
	out = append(out, old[r.pos:]...)
	for _, t := range rw.newTypes {
		out = append(out, 0x60)
		out = appendU32(out, uint32(len(t.params)))
		out = append(out, t.params...)
		out = appendU32(out, uint32(len(t.results)))
		out = append(out, t.results...)
	}
	return out
}

func (rw *rewriter) importSection(old []byte) []byte {
	r := reader{b: old}
	var n uint32
	if old != nil {
		n = r.u32()
	}
	out := appendU32(nil, n+1)
	// The new import goes last, after every imported function: its index is the count of those, and
	// only the module's own functions shift.
	out = append(out, old[r.pos:]...)
	out = appendName(out, rw.cfg.ImportModule)
	out = appendName(out, rw.cfg.ImportName)
	out = append(out, 0x00)
	return appendU32(out, rw.hostType)
}

// globalSection makes the section of a module with no globals of its own.
func (rw *rewriter) globalSection() []byte {
	out := appendU32(nil, 2)
	return rw.appendCounters(out)
}

func (rw *rewriter) appendCounters(out []byte) []byte {
	for _, v := range []int32{rw.cfg.Fuel, rw.cfg.MaxDepth} {
		out = append(out, valI32, 0x01, opI32Const)
		out = appendS32(out, v)
		out = append(out, opEnd)
	}
	return out
}

func (rw *rewriter) globalSectionFrom(old []byte) ([]byte, error) {
	r := reader{b: old}
	n := r.u32()
	out := appendU32(nil, n+2)
	for range n {
		out = append(out, r.byte(), r.byte()) // type, mutability
		var err error
		if out, err = rw.constExpr(&r, out); err != nil {
			return nil, err
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return rw.appendCounters(out), nil
}

// constExpr copies a constant expression, shifting ref.func.
func (rw *rewriter) constExpr(r *reader, out []byte) ([]byte, error) {
	for {
		start := r.pos
		op := r.byte()
		if r.err != nil {
			return nil, r.err
		}
		switch op {
		case opEnd:
			return append(out, op), nil
		case opRefFunc:
			out = append(out, op)
			out = appendU32(out, rw.shift(r.u32()))
			continue
		}
		r.pos = start
		if err := skipInstruction(r); err != nil {
			return nil, err
		}
		out = append(out, r.b[start:r.pos]...)
	}
}

func (rw *rewriter) exportSection(old []byte) ([]byte, error) {
	r := reader{b: old}
	n := r.u32()
	out := appendU32(nil, n)
	for range n {
		out = appendName(out, r.name())
		kind := r.byte()
		idx := r.u32()
		if kind == 0x00 {
			idx = rw.shift(idx)
		}
		out = append(out, kind)
		out = appendU32(out, idx)
	}
	return out, r.err
}

func (rw *rewriter) elementSection(old []byte) ([]byte, error) {
	r := reader{b: old}
	n := r.u32()
	out := appendU32(nil, n)
	funcIndices := func() {
		k := r.u32()
		out = appendU32(out, k)
		for range k {
			out = appendU32(out, rw.shift(r.u32()))
		}
	}
	exprs := func() error {
		k := r.u32()
		out = appendU32(out, k)
		for range k {
			var err error
			if out, err = rw.constExpr(&r, out); err != nil {
				return err
			}
		}
		return nil
	}
	for range n {
		flags := r.u32()
		out = appendU32(out, flags)
		var err error
		switch flags {
		case 0:
			if out, err = rw.constExpr(&r, out); err == nil {
				funcIndices()
			}
		case 1, 3:
			out = append(out, r.byte())
			funcIndices()
		case 2:
			out = appendU32(out, r.u32())
			if out, err = rw.constExpr(&r, out); err == nil {
				out = append(out, r.byte())
				funcIndices()
			}
		case 4:
			if out, err = rw.constExpr(&r, out); err == nil {
				err = exprs()
			}
		case 5, 7:
			out = append(out, r.byte())
			err = exprs()
		case 6:
			out = appendU32(out, r.u32())
			if out, err = rw.constExpr(&r, out); err == nil {
				out = append(out, r.byte())
				err = exprs()
			}
		default:
			err = fmt.Errorf("%w: element segment flags %d", ErrMalformed, flags)
		}
		if err != nil {
			return nil, err
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	return out, r.err
}

// nameSection shifts the function indices of the function names (subsection 1) and local names
// (subsection 2); the other subsections name things whose indices did not change.
func (rw *rewriter) nameSection(old []byte, pos int) ([]byte, error) {
	r := reader{b: old, pos: pos}
	out := append([]byte(nil), old[:pos]...)
	for !r.done() {
		id := r.byte()
		sub := reader{b: r.bytes(int(r.u32()))}
		if r.err != nil {
			return nil, r.err
		}
		var body []byte
		switch id {
		case 1:
			n := sub.u32()
			body = appendU32(nil, n)
			for range n {
				body = appendU32(body, rw.shift(sub.u32()))
				body = appendName(body, sub.name())
			}
		case 2:
			n := sub.u32()
			body = appendU32(nil, n)
			for range n {
				body = appendU32(body, rw.shift(sub.u32()))
				k := sub.u32()
				body = appendU32(body, k)
				for range k {
					body = appendU32(body, sub.u32())
					body = appendName(body, sub.name())
				}
			}
		default:
			body = sub.b
		}
		if sub.err != nil {
			return nil, sub.err
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

// code rewrites the code section.
func (rw *rewriter) code(old []byte) ([]byte, error) {
	r := reader{b: old}
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	if int(n) != len(rw.funcs) {
		return nil, fmt.Errorf("%w: %d function bodies for %d functions", ErrMalformed, n, len(rw.funcs))
	}
	out := appendU32(make([]byte, 0, len(old)+len(old)/2), n)
	var body []byte
	for i := range n {
		size := r.u32()
		fn := reader{b: r.bytes(int(size))}
		if r.err != nil {
			return nil, r.err
		}
		var err error
		if body, err = rw.function(&fn, rw.types[rw.funcs[i]], body[:0]); err != nil {
			return nil, fmt.Errorf("function %d: %w", rw.nImports+i, err)
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

// Opcodes the rewrite reads or writes.
const (
	opUnreachable = 0x00
	opBlock       = 0x02
	opLoop        = 0x03
	opIf          = 0x04
	opElse        = 0x05
	opEnd         = 0x0b
	opBr          = 0x0c
	opReturn      = 0x0f
	opCall        = 0x10
	opDrop        = 0x1a
	opLocalGet    = 0x20
	opLocalTee    = 0x22
	opGlobalGet   = 0x23
	opGlobalSet   = 0x24
	opI32Const    = 0x41
	opI32Eqz      = 0x45
	opI32LtS      = 0x48
	opI32Add      = 0x6a
	opI32Sub      = 0x6b
	opI32ShrU     = 0x76
	opTableSet    = 0x26
	opRefFunc     = 0xd2
	opPrefixFC    = 0xfc

	fcMemoryCopy = 10
	fcMemoryFill = 11

	valI32   = 0x7f
	blockNil = 0x40
)

// function rewrites one function body:
//
//	<depth check> <fuel check> block (result ...) <body, return as br to this block> end <depth restore> end
//
// The block lets every way out of the function (falling off its end, return, a branch to its
// outermost label) pass the depth restore.
func (rw *rewriter) function(r *reader, t funcType, out []byte) ([]byte, error) {
	// Locals: the declared ones, and one scratch i32 after them.
	groups := r.u32()
	locals := uint32(len(t.params))
	out = appendU32(out, groups+1)
	for range groups {
		k := r.u32()
		typ := r.byte()
		locals += k
		out = appendU32(out, k)
		out = append(out, typ)
	}
	if r.err != nil {
		return nil, r.err
	}
	scratch := locals
	out = append(out, 0x01, valI32)

	// Depth: count down by the frame's weight, and call the host when it is spent. A function that
	// calls nothing adds one frame at most: it is not counted, nor wrapped.
	leaf, err := callsNothing(*r)
	if err != nil {
		return nil, err
	}
	weight := int32(min(1+locals/16, math.MaxInt32/2))
	if !leaf {
		out = rw.appendCountdown(out, rw.depth, scratch, func(out []byte) []byte {
			out = append(out, opI32Const)
			return appendS32(out, weight)
		})
		out = append(out, opLocalGet)
		out = appendU32(out, scratch)
		out = append(out, opI32Const, 0, opI32LtS, opIf, blockNil, opI32Const, ReasonDepth, opCall)
		out = appendU32(out, rw.nImports)
		out = append(out, opDrop, opEnd)
	}
	// The entry's fuel check, unless the body runs straight into a loop header, which has one (Go's
	// functions all begin so).
	if !reachesLoop(*r) {
		out = rw.appendFuelCheck(out, scratch, nil)
	}

	if !leaf {
		out = append(out, opBlock)
		out = rw.appendBlockType(out, t.results)
	}
	depth := uint32(0) // open blocks of the original body
	// Instructions the rewrite leaves alone are copied in runs, from run to the current one.
	run := r.pos
	for {
		start := r.pos
		op := r.byte()
		if r.err != nil {
			return nil, r.err
		}
		switch op {
		case opBlock, opIf:
			depth++
		case opLoop:
			depth++
			if err := skipBlockType(r); err != nil {
				return nil, err
			}
			out = append(out, r.b[run:r.pos]...)
			out = rw.appendFuelCheck(out, scratch, nil)
			run = r.pos
			continue
		case opEnd:
			if depth == 0 && leaf {
				out = append(out, r.b[run:r.pos]...)
				if !r.done() {
					return nil, fmt.Errorf("%w: bytes after the end of a function body", ErrMalformed)
				}
				return out, nil
			}
			if depth == 0 {
				// The function's end: close the block, restore the depth.
				out = append(out, r.b[run:start]...)
				out = append(out, opEnd, opGlobalGet)
				out = appendU32(out, rw.depth)
				out = append(out, opI32Const)
				out = appendS32(out, weight)
				out = append(out, opI32Add, opGlobalSet)
				out = appendU32(out, rw.depth)
				out = append(out, opEnd)
				if !r.done() {
					return nil, fmt.Errorf("%w: bytes after the end of a function body", ErrMalformed)
				}
				return out, nil
			}
			depth--
		case opReturn:
			if leaf {
				continue
			}
			out = append(out, r.b[run:start]...)
			out = append(out, opBr)
			out = appendU32(out, depth)
			run = r.pos
			continue
		case opCall, opRefFunc:
			idx := r.u32()
			if idx < rw.nImports {
				continue
			}
			out = append(out, r.b[run:start]...)
			out = append(out, op)
			out = appendU32(out, rw.shift(idx))
			run = r.pos
			continue
		case opTableSet:
			rw.tableWrites = true
		case opPrefixFC:
			sub := r.u32()
			rw.tableWrites = rw.tableWrites || tableWriteFC(sub)
			if sub == fcMemoryCopy || sub == fcMemoryFill {
				// The length is on top of the stack: charge it, and leave it there.
				out = append(out, r.b[run:start]...)
				run = start
				out = append(out, opLocalTee)
				out = appendU32(out, scratch)
				out = rw.appendFuelCheck(out, scratch, func(out []byte) []byte {
					out = append(out, opLocalGet)
					out = appendU32(out, scratch)
					out = append(out, opI32Const)
					out = appendS32(out, int32(rw.cfg.BulkShift))
					return append(out, opI32ShrU)
				})
			}
		}
		r.pos = start
		if err := skipInstruction(r); err != nil {
			return nil, err
		}
	}
}

// callsNothing reports whether the function body at r makes no call.
func callsNothing(r reader) (bool, error) {
	for !r.done() {
		switch r.peek() {
		case opCall, 0x11:
			return false, nil
		}
		if err := skipInstruction(&r); err != nil {
			return false, err
		}
	}
	return true, r.err
}

// reachesLoop reports whether the code at r runs straight into a loop header: within a few
// instructions, with no call or branch before it.
func reachesLoop(r reader) bool {
	for range 16 {
		start := r.pos
		op := r.byte()
		switch {
		case r.err != nil:
			return false
		case op == opLoop:
			return true
		case op == opBlock, op == 0x01, op == opDrop, op >= opLocalGet && op <= opGlobalSet,
			op >= opI32Const && op <= 0x44, op >= opI32Eqz && op <= 0xc4:
			r.pos = start
			if skipInstruction(&r) != nil {
				return false
			}
		default:
			return false
		}
	}
	return false
}

// appendCountdown subtracts one (or what cost pushes) from global g, leaving the new value in local
// scratch and in g.
func (rw *rewriter) appendCountdown(out []byte, g, scratch uint32, cost func([]byte) []byte) []byte {
	out = append(out, opGlobalGet)
	out = appendU32(out, g)
	if cost == nil {
		out = append(out, opI32Const, 1)
	} else {
		out = cost(out)
	}
	out = append(out, opI32Sub, opLocalTee)
	out = appendU32(out, scratch)
	out = append(out, opGlobalSet)
	return appendU32(out, g)
}

// appendFuelCheck charges fuel and calls the host when it is gone; the host refills it.
func (rw *rewriter) appendFuelCheck(out []byte, scratch uint32, cost func([]byte) []byte) []byte {
	out = rw.appendCountdown(out, rw.fuel, scratch, cost)
	out = append(out, opLocalGet)
	out = appendU32(out, scratch)
	out = append(out, opI32Const, 0, opI32LtS, opIf, blockNil, opI32Const, ReasonFuel, opCall)
	out = appendU32(out, rw.nImports)
	out = append(out, opGlobalSet)
	out = appendU32(out, rw.fuel)
	return append(out, opEnd)
}

// appendBlockType encodes a block with the given results and no parameters.
func (rw *rewriter) appendBlockType(out []byte, results []byte) []byte {
	switch len(results) {
	case 0:
		return append(out, blockNil)
	case 1:
		return append(out, results[0])
	}
	idx, ok := rw.blockTypes[string(results)]
	if !ok {
		idx = rw.addType(funcType{results: results})
		rw.blockTypes[string(results)] = idx
	}
	return appendS64(out, int64(idx))
}
