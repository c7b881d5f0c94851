;; A module whose initial memory is made by data segments of every shape Detach merges or keeps
;; apart: adjacent, overlapping, separated by a few zeros and by many, and out of order.
(module
  (memory (export "memory") 2 4)
  (global $counter (mut i32) (i32.const 7))
  (global $wide (mut i64) (i64.const -3))
  (global $fixed i32 (i32.const 42))
  (data (i32.const 16) "abc")
  (data (i32.const 19) "def")
  (data (i32.const 20) "XY")
  (data (i32.const 60) "gap-under-64")
  (data (i32.const 4000) "far away")
  (data (i32.const 8) "before")
  (data (i32.const 65530) "across-the-page")
  (data (i32.const 100000) "")
  (func (export "bump") (result i32)
    (global.set $counter (i32.add (global.get $counter) (global.get $fixed)))
    (global.get $counter)))
