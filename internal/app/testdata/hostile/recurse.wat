;; A reactor whose handler recurses without end, until the call stack is exhausted.
(module
  (memory (export "memory") 16)
  (func $down (param $n i32) (result i32)
    (call $down (i32.add (local.get $n) (i32.const 1))))
  (func (export "gatehouse_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "gatehouse_handle") (param i32 i32 i32) (result i64)
    (drop (call $down (i32.const 0)))
    (i64.const 0)))
