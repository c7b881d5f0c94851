;; A reactor in WebAssembly text that answers every event with the event itself: the bytes after the
;; metadata, behind a status byte 0, which it writes just before the event.
(module
  (memory (export "memory") 4)
  (global $buf (mut i32) (i32.const 1024))
  (func (export "gatehouse_alloc") (param $size i32) (result i32)
    ;; grow to fit 1024 + 1 + size bytes
    (local $need i32)
    (local.set $need (i32.add (i32.const 1025) (local.get $size)))
    (if (i32.gt_u (local.get $need) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.div_u (local.get $need) (i32.const 65536)) (i32.const 1))))))
    (i32.const 1025))
  (func (export "gatehouse_handle") (param $ptr i32) (param $meta i32) (param $event i32) (result i64)
    (local $out i32)
    ;; the status byte goes right before the event
    (local.set $out (i32.sub (i32.add (local.get $ptr) (local.get $meta)) (i32.const 1)))
    (i32.store8 (local.get $out) (i32.const 0))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.add (local.get $event) (i32.const 1))))))
