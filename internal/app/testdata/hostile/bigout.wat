;; A reactor that answers with 8 MiB of output: status byte 0 at address 0, then 8 MiB of zero bytes.
(module
  (memory (export "memory") 130)
  (func (export "gatehouse_alloc") (param $size i32) (result i32) (i32.const 8389632))
  (func (export "gatehouse_handle") (param i32 i32 i32) (result i64)
    ;; (out_ptr 0 << 32) | out_len (1 + 8 MiB)
    (i64.const 8388609)))
