;; Exports no entry point of either ABI: refused.
(module
  (memory (export "memory") 1)
  (func (export "run")))
