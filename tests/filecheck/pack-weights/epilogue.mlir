// RUN: mipsc opt %s -p pack-weights | filecheck %s
// RUN: mipsc opt %s -p "pack-weights{backend=openblas}" | filecheck %s --check-prefix=OPENBLAS

// A product with a fused epilogue (fuse-epilogues runs first): the packed product keeps its
// activation and its binary op with the other tensor.
util.global private @w = dense<1.0> : tensor<64x32xf32>
func.func @main(%a: tensor<8x32xf32>, %c: tensor<8x64xf32>, %r: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %w = util.global.load @w : tensor<64x32xf32>
  %y = mips.matmul transpose_rhs ins(%a, %w : tensor<8x32xf32>, tensor<64x32xf32>) outs(%c : tensor<8x64xf32>) activation(gelu) binary(add, %r : tensor<8x64xf32>) -> tensor<8x64xf32>
  return %y : tensor<8x64xf32>
}

// CHECK:      func.func @main(
// CHECK:        %[[P:.*]] = util.global.load @w.packedT : tensor<2048xf32>
// CHECK-NEXT:   mips.matmul packed_rhs ins(%{{.*}}, %[[P]] : tensor<8x32xf32>, tensor<2048xf32>) outs(%{{.*}} : tensor<8x64xf32>) activation(gelu) binary(add, %r : tensor<8x64xf32>) -> tensor<8x64xf32>

// Another kernel library takes B unpacked: nothing is packed.
// OPENBLAS-NOT: util.initializer
// OPENBLAS:     mips.matmul transpose_rhs ins(
