;; Exports both ABIs: refused as ambiguous.
(module
  (memory (export "memory") 1)
  (func (export "_start"))
  (func (export "gatehouse_alloc") (param i32) (result i32) (i32.const 0))
  (func (export "gatehouse_handle") (param i32 i32 i32) (result i64) (i64.const 0)))
