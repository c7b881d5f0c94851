(module
  (memory 1)
  (data (i32.const 0) "x")
  (func $s)
  (start $s))
