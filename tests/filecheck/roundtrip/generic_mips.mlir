// RUN: mipsc opt %s --print-op-generic | filecheck %s
// RUN: mipsc opt %s > %t.custom.mlir && mipsc opt %s --print-op-generic > %t.generic.mlir
// RUN: mipsc opt %t.generic.mlir > %t.back.mlir && diff %t.custom.mlir %t.back.mlir

// The mips ops in the generic form, and back: the same module as their own syntax prints.
func.func @mm(%a: tensor<5x6xf32>, %b: tensor<6x3xf32>, %c: tensor<5x3xf32>) -> tensor<5x3xf32> {
  %r = mips.matmul ins(%a, %b : tensor<5x6xf32>, tensor<6x3xf32>) outs(%c : tensor<5x3xf32>) -> tensor<5x3xf32>
  return %r : tensor<5x3xf32>
}
// CHECK:      "mips.matmul"(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<5x6xf32>, tensor<6x3xf32>, tensor<5x3xf32>) -> tensor<5x3xf32>

func.func @bmm(%a: tensor<4x6x5xf32>, %b: tensor<4x3x6xf32>, %c: tensor<4x5x3xf32>) -> tensor<4x5x3xf32> {
  %r = mips.batch_matmul transpose_lhs transpose_rhs ins(%a, %b : tensor<4x6x5xf32>, tensor<4x3x6xf32>) outs(%c : tensor<4x5x3xf32>) -> tensor<4x5x3xf32>
  return %r : tensor<4x5x3xf32>
}
// CHECK:      "mips.batch_matmul"(%{{.*}}, %{{.*}}, %{{.*}}) <{transpose_lhs, transpose_rhs}> : (tensor<4x6x5xf32>, tensor<4x3x6xf32>, tensor<4x5x3xf32>) -> tensor<4x5x3xf32>
