// RUN: mipsc opt %s -p lower-mips-to-call | filecheck %s

// K = 0: every sum is empty, the product is its init: no dispatch, no executable.
func.func @k_zero(%a: tensor<3x0xf32>, %b: tensor<0x4xf32>, %c: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %r = mips.matmul ins(%a, %b : tensor<3x0xf32>, tensor<0x4xf32>) outs(%c : tensor<3x4xf32>) -> tensor<3x4xf32>
  return %r : tensor<3x4xf32>
}

// An empty result (N = 0): nothing to compute.
func.func @n_zero(%a: tensor<?x5xf32>, %b: tensor<5x0xf32>) -> tensor<?x0xf32> {
  %c0 = arith.constant 0 : index
  %m = tensor.dim %a, %c0 : tensor<?x5xf32>
  %e = tensor.empty(%m) : tensor<?x0xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<?x0xf32>) -> tensor<?x0xf32>
  %r = mips.matmul ins(%a, %b : tensor<?x5xf32>, tensor<5x0xf32>) outs(%f : tensor<?x0xf32>) -> tensor<?x0xf32>
  return %r : tensor<?x0xf32>
}

// A K of 0 that only the transposed rhs knows statically.
func.func @k_zero_rhs(%a: tensor<3x?xf32>, %b: tensor<4x0xf32>, %c: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %r = mips.matmul transpose_rhs ins(%a, %b : tensor<3x?xf32>, tensor<4x0xf32>) outs(%c : tensor<3x4xf32>) -> tensor<3x4xf32>
  return %r : tensor<3x4xf32>
}

// CHECK-NOT:   stream.executable
// CHECK-LABEL: func.func @k_zero(
// CHECK-SAME:    %{{.*}}: tensor<3x0xf32>, %{{.*}}: tensor<0x4xf32>, %[[C:.*]]: tensor<3x4xf32>)
// CHECK-NEXT:    func.return %[[C]] : tensor<3x4xf32>
// CHECK-LABEL: func.func @n_zero(
// CHECK:         %[[F:.*]] = linalg.fill
// CHECK-NOT:     flow.dispatch
// CHECK:         func.return %[[F]] : tensor<?x0xf32>
// CHECK-LABEL: func.func @k_zero_rhs(
// CHECK-SAME:    %[[C2:[^:]*]]: tensor<3x4xf32>)
// CHECK-NEXT:    func.return %[[C2]] : tensor<3x4xf32>
