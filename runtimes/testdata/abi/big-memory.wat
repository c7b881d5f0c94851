;; Starts with 200 MiB of memory: refused for a function whose limit is 128 MB.
(module
  (memory (export "memory") 3200)
  (func (export "gatehouse_alloc") (param i32) (result i32) (i32.const 0))
  (func (export "gatehouse_handle") (param i32 i32 i32) (result i64) (i64.const 0)))
