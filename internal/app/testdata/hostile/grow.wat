;; A reactor whose handler grows its memory one page at a time until growing fails, then traps.
(module
  (memory (export "memory") 16)
  (func (export "gatehouse_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "gatehouse_handle") (param i32 i32 i32) (result i64)
    (block $full
      (loop $more
        (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $more)))
    unreachable))
