// RUN: mipsc opt %s -p "pack-weights" | filecheck %s
// RUN: mipsc opt %s -p "pack-weights{target_cpu=znver4}" | filecheck %s

// A constant f32 B of a product with one row (a decode step) is packed, whatever the kernel
// link: packed_thin streams the packed copy faster than the unpacked loops read the weight
// where it lies once the copy is on huge pages, which the plugin's pack advises and mipsc's
// runtime gives an embedded module's packs after the load (the target CPU's
// prepack_f32_min_rows, 1 on zen4: tiling.PREPACK_F32_MIN_ROWS).
util.global private @w = dense<1.0> : tensor<16x8xf32>
func.func @one_row(%a: tensor<1x8xf32>, %c: tensor<1x16xf32>) -> tensor<1x16xf32> {
  %w = util.global.load @w : tensor<16x8xf32>
  %r = mips.matmul transpose_rhs ins(%a, %w : tensor<1x8xf32>, tensor<16x8xf32>) outs(%c : tensor<1x16xf32>) -> tensor<1x16xf32>
  return %r : tensor<1x16xf32>
}

// CHECK:      util.initializer
// CHECK:        mips.pack_rhs transpose %{{.*}} : tensor<16x8xf32> -> tensor<256xf32>
// CHECK:      func.func @one_row(
// CHECK:        %[[P:.*]] = util.global.load @w.packedT : tensor<256xf32>
// CHECK-NEXT:   mips.matmul packed_rhs ins(%{{.*}}, %[[P]] : tensor<1x8xf32>, tensor<256xf32>) outs(%{{.*}} : tensor<1x16xf32>) -> tensor<1x16xf32>
