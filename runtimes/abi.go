package runtimes

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// ABI is the calling convention a module speaks.
type ABI int

// ABIs.
const (
	ABIReactor ABI = iota + 1
	ABICommand
)

func (a ABI) String() string {
	switch a {
	case ABIReactor:
		return "reactor"
	case ABICommand:
		return "command"
	}
	return "unknown"
}

// Export names of the reactor ABI.
const (
	ExportAlloc      = "gatehouse_alloc"
	ExportHandle     = "gatehouse_handle"
	ExportInitialize = "_initialize"
	ExportStart      = "_start"
	ExportMemory     = "memory"
)

// Response status bytes: the first byte of a reactor's output.
const (
	statusOK       = 0
	statusError    = 1
	statusPanicked = 2
)

func detectABI(cm wazero.CompiledModule) (ABI, error) {
	for _, imp := range cm.ImportedFunctions() {
		mod, name, _ := imp.Import()
		switch {
		case mod == wasi_snapshot_preview1.ModuleName:
		case mod == HostModule && name == HostCall:
			if err := checkSignature(imp, []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}); err != nil {
				return 0, err
			}
		case mod == HostModule && name == HostYield:
			// Added by the safepoint rewrite, which refuses modules importing it themselves.
		case mod == HostModule && name == HostResult:
			if err := checkSignature(imp, []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("%w: the module imports %s.%s; functions may import only %s and %s.%s/%s",
				ErrABI, mod, name, wasi_snapshot_preview1.ModuleName, HostModule, HostCall, HostResult)
		}
	}
	for _, mem := range cm.ImportedMemories() {
		mod, name, _ := mem.Import()
		return 0, fmt.Errorf("%w: the module imports memory %s.%s; a function must define its own memory", ErrABI, mod, name)
	}
	exports := cm.ExportedFunctions()
	alloc, hasAlloc := exports[ExportAlloc]
	handle, hasHandle := exports[ExportHandle]
	_, hasStart := exports[ExportStart]
	reactor := hasAlloc || hasHandle
	switch {
	case reactor && hasStart:
		return 0, fmt.Errorf("%w: the module exports both %s (command) and %s (reactor); export one ABI", ErrABI, ExportStart, ExportHandle)
	case !reactor && !hasStart:
		return 0, fmt.Errorf("%w: the module exports neither %s and %s (reactor) nor %s (command)", ErrABI, ExportAlloc, ExportHandle, ExportStart)
	case hasStart:
		return ABICommand, nil
	}
	if !hasAlloc || !hasHandle {
		return 0, fmt.Errorf("%w: a reactor must export both %s and %s", ErrABI, ExportAlloc, ExportHandle)
	}
	if err := checkSignature(alloc, []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}); err != nil {
		return 0, err
	}
	if err := checkSignature(handle, []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}); err != nil {
		return 0, err
	}
	if _, ok := cm.ExportedMemories()[ExportMemory]; !ok {
		return 0, fmt.Errorf("%w: a reactor must export its memory as %q", ErrABI, ExportMemory)
	}
	return ABIReactor, nil
}

func checkSignature(f api.FunctionDefinition, params, results []api.ValueType) error {
	if slices.Equal(f.ParamTypes(), params) && slices.Equal(f.ResultTypes(), results) {
		return nil
	}
	name := f.Name()
	if mod, imp, ok := f.Import(); ok {
		name = mod + "." + imp
	} else if names := f.ExportNames(); len(names) > 0 {
		name = names[0]
	}
	return fmt.Errorf("%w: %s has signature (%s) -> (%s), want (%s) -> (%s)", ErrABI, name,
		typeNames(f.ParamTypes()), typeNames(f.ResultTypes()), typeNames(params), typeNames(results))
}

func typeNames(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return strings.Join(names, ", ")
}
