;; A reactor that counts to 100 million in a tight loop and answers {"statusCode":200,"body":"counted"}:
;; the worst case for the safepoint counter, which runs once per iteration.
(module
  (memory (export "memory") 1)
  (data (i32.const 256) "\00{\"statusCode\":200,\"body\":\"counted\"}")
  (func (export "gatehouse_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "gatehouse_handle") (param i32 i32 i32) (result i64)
    (local $i i32) (local $x i32)
    (local.set $i (i32.const 100000000))
    (loop $again
      (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 31)) (local.get $i)))
      (br_if $again (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
    (i32.store (i32.const 512) (local.get $x))
    (i64.or (i64.shl (i64.const 256) (i64.const 32)) (i64.const 37))))
