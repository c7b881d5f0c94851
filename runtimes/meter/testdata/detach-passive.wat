(module
  (memory 1)
  (data "x"))
