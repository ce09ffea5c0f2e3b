// RUN: not mipsc opt %s -p lower-mips-to-call 2>&1 | filecheck %s

// A mips op of an element type no kernel takes is a located error, not a crash.
func.func @f64(%a: tensor<4x5xf64>, %b: tensor<5x3xf64>, %c: tensor<4x3xf64>) -> tensor<4x3xf64> {
  %r = mips.matmul ins(%a, %b : tensor<4x5xf64>, tensor<5x3xf64>) outs(%c : tensor<4x3xf64>) -> tensor<4x3xf64>
  return %r : tensor<4x3xf64>
}
// CHECK: no_kernel.mlir:5:3: error: mips.matmul on f64 has no kernel
// CHECK-NOT: Traceback
