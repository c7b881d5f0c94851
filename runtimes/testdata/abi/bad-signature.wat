;; gatehouse_handle with the wrong signature: refused.
(module
  (memory (export "memory") 1)
  (func (export "gatehouse_alloc") (param i32) (result i32) (i32.const 0))
  (func (export "gatehouse_handle") (param i32 i32) (result i32) (i32.const 0)))
