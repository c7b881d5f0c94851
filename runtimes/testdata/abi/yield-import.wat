;; A reactor that imports Gatehouse's safepoint itself, which only the rewrite may add.
(module
  (import "gatehouse" "yield" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "gatehouse_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "gatehouse_handle") (param i32 i32 i32) (result i64) (i64.const 0)))
