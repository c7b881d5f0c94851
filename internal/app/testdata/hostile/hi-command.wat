;; A command-ABI function in WebAssembly text: _start reads the event from stdin (and ignores it) and
;; writes a fixed response to stdout.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; the response, 49 bytes at offset 64
  (data (i32.const 64) "{\"statusCode\":200,\"body\":\"hi from a wat command\"}")
  (func (export "_start")
    ;; read up to 64 KiB of the event into offset 65536: iovec at 0 = {65536, 65536}, count at 8
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 65536))
    (drop (call $fd_read (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 8)))
    ;; write the response: iovec at 16 = {64, len}, written count at 24
    (i32.store (i32.const 16) (i32.const 64))
    (i32.store (i32.const 20) (i32.const 49))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))))
