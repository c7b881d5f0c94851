(module
  (import "env" "base" (global $base i32))
  (memory 1)
  (data (global.get $base) "x"))
