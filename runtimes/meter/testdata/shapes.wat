;; Every place a function index appears, for the rewrite's tests: calls to an import and to the
;; module's own functions, a table filled by element segments, ref.func in a global initialiser and in
;; code, the start function, exports, multi-value results left by return and by a branch to the
;; function's label, a loop, memory.fill, recursion and a trap in a named function.
(module
  (import "env" "add1" (func $add1 (param i32) (result i32)))
  (type $t (func (param i32) (result i32)))
  (table $tbl 4 funcref)
  (elem (i32.const 0) $double $add1 $triple)
  (elem declare func $triple)
  (global $started (mut i32) (i32.const 0))
  (global $fref funcref (ref.func $double))
  (memory (export "memory") 1)
  (start $init)

  (func $init (global.set $started (i32.const 5)))
  (func $double (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
  (func $triple (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))

  (func (export "started") (result i32) (global.get $started))
  (func (export "direct") (param i32) (result i32) (call $add1 (call $double (local.get 0))))
  (func (export "indirect") (param $slot i32) (param $x i32) (result i32)
    (call_indirect (type $t) (local.get $x) (local.get $slot)))
  (func (export "via_global_ref") (param i32) (result i32)
    (table.set $tbl (i32.const 3) (global.get $fref))
    (call_indirect (type $t) (local.get 0) (i32.const 3)))
  (func (export "via_code_ref") (param i32) (result i32)
    (table.set $tbl (i32.const 3) (ref.func $triple))
    (call_indirect (type $t) (local.get 0) (i32.const 3)))

  (func (export "pair") (param $x i32) (result i32 i32)
    (if (i32.eqz (local.get $x)) (then (return (i32.const 7) (i32.const 8))))
    (if (i32.eq (local.get $x) (i32.const 1)) (then (br 1 (i32.const 3) (i32.const 4))))
    (i32.const 5) (i32.const 6))

  (func (export "count") (param $n i32) (result i32) (local $i i32)
    (loop $again
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i))

  (func (export "fill") (param $n i32)
    (memory.fill (i32.const 0) (i32.const 1) (local.get $n)))

  (func $down (export "down") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (i32.const 1) (call $down (i32.sub (local.get $n) (i32.const 1)))))))

  (func $boom (unreachable))
  (func (export "boom") (call $boom)))
