;; A reactor whose handler computes for 2 s: tight arithmetic loops of a million iterations, between
;; which it reads the monotonic clock. It answers done.
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "\00{\"statusCode\":200,\"body\":\"done\"}")
  (func $now (result i64)
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 0)))
    (i64.load (i32.const 0)))
  (func (export "gatehouse_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "gatehouse_handle") (param $ptr i32) (param $meta i32) (param $len i32) (result i64)
    (local $until i64) (local $i i32) (local $x i32)
    (local.set $until (i64.add (call $now) (i64.const 2000000000)))
    (loop $outer
      (local.set $i (i32.const 1000000))
      (loop $inner
        (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 31)) (local.get $i)))
        (br_if $inner (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
      (br_if $outer (i64.lt_u (call $now) (local.get $until))))
    (i32.store (i32.const 512) (local.get $x))
    (i64.or (i64.shl (i64.const 256) (i64.const 32)) (i64.const 33))))
