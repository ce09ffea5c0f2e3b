// RUN: mipsc opt %s -p "pack-weights{kernel_link=plugin}" | filecheck %s
// RUN: mipsc opt %s -p "pack-weights{kernel_link=embedded}" | filecheck %s --check-prefix=EMBEDDED

// A constant f32 B of a product with one row (a decode step) is packed with the plugin link,
// whose pack puts the copy on huge pages, where packed_thin streams it faster than the unpacked
// loops read the weight where it lies; not with the embedded link (4 KiB pages: no gain, and
// one more copy of the weight; tiling.PREPACK_F32_MIN_ROWS).
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

// EMBEDDED-NOT: util.initializer
// EMBEDDED-NOT: packed_rhs
