// RUN: mipsc opt %s -p pack-weights | filecheck %s

// Not packed: a B that is a function argument (it may change between calls), a mutable global,
// an f16 B (no packed kernel), and a B with a dynamic dim.
util.global private mutable @m = dense<1.0> : tensor<8x16xf32>
func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %c: tensor<4x16xf32>,
                %ah: tensor<4x8xf16>, %ch: tensor<4x16xf16>, %bd: tensor<8x?xf32>,
                %cd: tensor<4x?xf32>)
    -> (tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf16>, tensor<4x?xf32>) {
  %r = mips.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x16xf32>) outs(%c : tensor<4x16xf32>) -> tensor<4x16xf32>
  %m = util.global.load @m : tensor<8x16xf32>
  %s = mips.matmul ins(%a, %m : tensor<4x8xf32>, tensor<8x16xf32>) outs(%c : tensor<4x16xf32>) -> tensor<4x16xf32>
  %h = arith.constant dense<1.0> : tensor<8x16xf16>
  %t = mips.matmul ins(%ah, %h : tensor<4x8xf16>, tensor<8x16xf16>) outs(%ch : tensor<4x16xf16>) -> tensor<4x16xf16>
  %u = mips.matmul ins(%a, %bd : tensor<4x8xf32>, tensor<8x?xf32>) outs(%cd : tensor<4x?xf32>) -> tensor<4x?xf32>
  return %r, %s, %t, %u : tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf16>, tensor<4x?xf32>
}

// CHECK-NOT: util.initializer
// CHECK-NOT: packed_rhs
