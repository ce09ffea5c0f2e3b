// RUN: mipsc opt %s -p pack-weights | filecheck %s

// A linear weight in an immutable global: packed once, in an initializer (the barrier keeps
// IREE's const-eval from running the pack at compile time), and the matmul reads the packed
// global: 1024x64 f32 stored [N, K] = [64, 1024] -> packed_size(1024, 64) = 1024 * 64.
util.global private @w = dense<1.0> : tensor<64x1024xf32>
func.func @main(%a: tensor<8x1024xf32>, %c: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %w = util.global.load @w : tensor<64x1024xf32>
  %r = mips.matmul transpose_rhs ins(%a, %w : tensor<8x1024xf32>, tensor<64x1024xf32>) outs(%c : tensor<8x64xf32>) -> tensor<8x64xf32>
  %s = mips.matmul transpose_rhs ins(%a, %w : tensor<8x1024xf32>, tensor<64x1024xf32>) outs(%r : tensor<8x64xf32>) -> tensor<8x64xf32>
  return %s : tensor<8x64xf32>
}

// CHECK:      util.global private @w = dense<1.000000e+00> : tensor<64x1024xf32>
// CHECK-NEXT: util.global private @w.packedT : tensor<65536xf32>
// CHECK-NEXT: util.initializer {
// CHECK-NEXT:   %[[W:.*]] = util.global.load @w : tensor<64x1024xf32>
// CHECK-NEXT:   %[[B:.*]] = util.optimization_barrier %[[W]] : tensor<64x1024xf32>
// CHECK-NEXT:   %[[P:.*]] = mips.pack_rhs transpose %[[B]] : tensor<64x1024xf32> -> tensor<65536xf32>
// CHECK-NEXT:   util.global.store %[[P]], @w.packedT : tensor<65536xf32>
// CHECK-NEXT:   util.return
// CHECK-NEXT: }
// Both matmuls share the one packed global (one initializer only).
// CHECK-NOT:  util.initializer
// CHECK:      func.func @main(
// CHECK:        %[[P1:.*]] = util.global.load @w.packedT : tensor<65536xf32>
// CHECK-NEXT:   %[[R:.*]] = mips.matmul packed_rhs ins(%{{.*}}, %[[P1]] : tensor<8x1024xf32>, tensor<65536xf32>) outs(%{{.*}} : tensor<8x64xf32>) -> tensor<8x64xf32>
// CHECK-NEXT:   %[[P2:.*]] = util.global.load @w.packedT : tensor<65536xf32>
// CHECK-NEXT:   mips.matmul packed_rhs ins(%{{.*}}, %[[P2]] : tensor<8x1024xf32>, tensor<65536xf32>) outs(%[[R]] : tensor<8x64xf32>) -> tensor<8x64xf32>
