(module
  (table $t 2 funcref)
  (func $f)
  (func (export "g") (table.set $t (i32.const 0) (ref.func $f)))
  (elem declare func $f))
