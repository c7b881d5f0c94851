;; A reactor whose handler sleeps through WASI poll_oneoff: for the nanoseconds in its event when the
;; event is 8 bytes (little-endian), else for 1 s. It answers slept.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "\00{\"statusCode\":200,\"body\":\"slept\"}")
  (func (export "gatehouse_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "gatehouse_handle") (param $ptr i32) (param $meta i32) (param $len i32) (result i64)
    (local $ns i64)
    (local.set $ns (i64.const 1000000000))
    (if (i32.eq (local.get $len) (i32.const 8))
      (then (local.set $ns (i64.load (i32.add (local.get $ptr) (local.get $meta))))))
    ;; One subscription at 0: a relative timeout on the monotonic clock.
    (i64.store (i32.const 0) (i64.const 0))
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (local.get $ns))
    (i64.store (i32.const 32) (i64.const 0))
    (i32.store16 (i32.const 40) (i32.const 0))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
    (i64.or (i64.shl (i64.const 256) (i64.const 32)) (i64.const 34))))
