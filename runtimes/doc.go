// Package runtimes runs WebAssembly functions in wazero sandboxes.
//
// It owns compiling modules (with wazero's file compilation cache), deciding which ABI a module speaks
// from its exports, instantiating sandboxes with only the capabilities a function is granted (its
// environment variables, a clock and randomness; no filesystem, no network, no host environment), and
// calling them. The Go guest SDK that functions import lives in the sdk subpackage; its source is embedded
// here ([GoSDKSource]) so functions outside this repository can be built against it.
//
// # ABIs
//
// A module speaks one of two ABIs, told apart by its exports (docs/abi.md is the full description):
//
//   - Reactor (ABIReactor): exports memory, gatehouse_alloc(size i32) -> i32 and
//     gatehouse_handle(ptr i32, meta_len i32, event_len i32) -> i64, and optionally _initialize, which is
//     called once after instantiation. One instance serves many invocations in turn.
//   - Command (ABICommand): exports _start. Each invocation instantiates the module afresh, writes the
//     event to its stdin and reads the response from its stdout.
//
// A module exporting both, or neither, is refused.
//
// # Safepoints
//
// Compiled guest code has no Go safepoints, so every module is rewritten before it is compiled (package
// meter) to call the host function gatehouse.yield every [DefaultYieldFuel] units of work and to bound
// its call depth. At that safepoint the Go runtime can stop the guest's goroutine (for the collector,
// or to run another), a guest past its deadline is stopped ([ErrTimeout]), and the invocation's [Turn]
// is offered to others. A guest's sleep gives the turn up and ends at the deadline too. A
// [MemoryBudget] bounds the linear memory all the instances of a worker commit together.
package runtimes
