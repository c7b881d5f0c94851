;; A reactor whose handler never returns: an infinite loop with no calls, so nothing can interrupt it.
(module
  (memory (export "memory") 16)
  (func (export "gatehouse_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "gatehouse_handle") (param i32 i32 i32) (result i64)
    (loop $forever (br $forever))
    (i64.const 0)))
