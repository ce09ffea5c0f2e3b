// RUN: mipsc opt %s -p "pack-weights" | filecheck %s

// An empty constant B (K = 0: `nn.Linear(0, 3)`; or N = 0) is not packed: the product is its
// init (or empty) and calls no kernel, and a pack of zero elements is no valid dispatch
// (iree-compile refused its subview: "offset 1 is out-of-bounds: 0 >= 0").
util.global private @w = dense<1.0> : tensor<3x0xf32>
util.global private @v = dense<1.0> : tensor<8x0xbf16>
func.func @empty_k(%a: tensor<4x0xf32>, %c: tensor<4x3xf32>) -> tensor<4x3xf32> {
  %w = util.global.load @w : tensor<3x0xf32>
  %r = mips.matmul transpose_rhs ins(%a, %w : tensor<4x0xf32>, tensor<3x0xf32>) outs(%c : tensor<4x3xf32>) -> tensor<4x3xf32>
  return %r : tensor<4x3xf32>
}
func.func @empty_n(%a: tensor<4x8xbf16>, %c: tensor<4x0xbf16>) -> tensor<4x0xbf16> {
  %v = util.global.load @v : tensor<8x0xbf16>
  %r = mips.matmul ins(%a, %v : tensor<4x8xbf16>, tensor<8x0xbf16>) outs(%c : tensor<4x0xbf16>) -> tensor<4x0xbf16>
  return %r : tensor<4x0xbf16>
}

// CHECK-NOT:  util.initializer
// CHECK-NOT:  mips.pack_rhs
// CHECK:      mips.matmul transpose_rhs ins(%{{.*}}, %{{.*}} : tensor<4x0xf32>, tensor<3x0xf32>)
// CHECK:      mips.matmul ins(%{{.*}}, %{{.*}} : tensor<4x8xbf16>, tensor<8x0xbf16>)
