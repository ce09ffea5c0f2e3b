// RUN: mipsc opt %s -p "lower-mips-to-call{kernel_link=plugin}" --split-input-file | filecheck %s

// Attention's heads read by strides: q and k are head slices of one projection output
// [S, 2, H, D] = [8, 2, 2, 4], moved to [H, S, D] (convert-torch-to-mips rebuilds torch's view
// chains like this). The dispatch binds the projection output itself, twice; each tile's
// offset adds the head's place (batch index z: head z % 2, stride 4), k's slice (8) and the
// row (stride 16); no transpose is left for IREE to copy.
func.func @heads(%qk: tensor<8x16xf32>) -> tensor<2x8x8xf32> {
  %flat = tensor.collapse_shape %qk [[0, 1]] : tensor<8x16xf32> into tensor<128xf32>
  %x = tensor.expand_shape %flat [[0, 1, 2, 3]] output_shape [8, 2, 2, 4] : tensor<128xf32> into tensor<8x2x2x4xf32>
  %qs = tensor.extract_slice %x[0, 0, 0, 0] [8, 1, 2, 4] [1, 1, 1, 1] : tensor<8x2x2x4xf32> to tensor<8x1x2x4xf32>
  %ks = tensor.extract_slice %x[0, 1, 0, 0] [8, 1, 2, 4] [1, 1, 1, 1] : tensor<8x2x2x4xf32> to tensor<8x1x2x4xf32>
  %q3 = tensor.collapse_shape %qs [[0, 1], [2], [3]] : tensor<8x1x2x4xf32> into tensor<8x2x4xf32>
  %k3 = tensor.collapse_shape %ks [[0, 1], [2], [3]] : tensor<8x1x2x4xf32> into tensor<8x2x4xf32>
  %eq = tensor.empty() : tensor<2x8x4xf32>
  %qt = linalg.transpose ins(%q3 : tensor<8x2x4xf32>) outs(%eq : tensor<2x8x4xf32>) permutation = [1, 0, 2]
  %ek = tensor.empty() : tensor<2x8x4xf32>
  %kt = linalg.transpose ins(%k3 : tensor<8x2x4xf32>) outs(%ek : tensor<2x8x4xf32>) permutation = [1, 0, 2]
  %e = tensor.empty() : tensor<2x8x8xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  %r = mips.batch_matmul transpose_rhs ins(%qt, %kt : tensor<2x8x4xf32>, tensor<2x8x4xf32>) outs(%f : tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  return %r : tensor<2x8x8xf32>
}

// CHECK-LABEL: stream.executable private @mips_exe_0
// CHECK:         %[[A:.*]] = stream.binding.subspan %{{.*}} : !stream.binding -> memref<8x16xf32, strided<[16, 1], offset: ?>>
// CHECK:         %[[B:.*]] = stream.binding.subspan %{{.*}} : !stream.binding -> memref<8x16xf32, strided<[16, 1], offset: ?>>
// CHECK:         scf.for %[[T:.*]] = 
// CHECK:           %[[ABASE:[0-9]+]], %[[AOFF:[0-9]+]], {{.*}} = memref.extract_strided_metadata %[[A]]
// CHECK-NEXT:      %[[ZERO:.*]] = arith.constant 0 : index
// CHECK-NEXT:      %[[A0:.*]] = arith.addi %[[AOFF]], %[[ZERO]] : index
// CHECK-NEXT:      %[[HEADS:.*]] = arith.constant 2 : index
// CHECK-NEXT:      %[[HEAD:.*]] = arith.remui %[[Z:.*]], %[[HEADS]] : index
// CHECK:           %[[HEAD_STRIDE:.*]] = arith.constant 4 : index
// CHECK-NEXT:      %[[HEAD_AT:.*]] = arith.muli %[[HEAD]], %[[HEAD_STRIDE]] : index
// CHECK-NEXT:      %[[A1:.*]] = arith.addi %[[A0]], %[[HEAD_AT]] : index
// CHECK:           %[[ROW_STRIDE:.*]] = arith.constant 16 : index
// CHECK-NEXT:      %[[ROW_AT:.*]] = arith.muli %[[I0:.*]], %[[ROW_STRIDE]] : index
// CHECK-NEXT:      %[[A2:.*]] = arith.addi %[[A1]], %[[ROW_AT]] : index
// CHECK-NEXT:      %[[AROWS:.*]] = arith.constant 16 : index
// CHECK-NEXT:      %[[ACOLS:.*]] = arith.constant 1 : index
// CHECK:           %{{[0-9]+}}, %[[BOFF:[0-9]+]], {{.*}} = memref.extract_strided_metadata %[[B]]
// CHECK-NEXT:      %[[KSLICE:.*]] = arith.constant 8 : index
// CHECK-NEXT:      %{{.*}} = arith.addi %[[BOFF]], %[[KSLICE]] : index
// CHECK:           func.call @mips_matmul_f32(%[[ABASE]], %[[A2]], %[[AROWS]], %[[ACOLS]],
// CHECK-LABEL: func.func @heads(
// CHECK-NOT:     linalg.transpose
// CHECK-NOT:     tensor.extract_slice
// CHECK:         flow.dispatch @mips_exe_0::@mips_matmul_0[%{{.*}}](%qk, %qk, %{{.*}}) : (tensor<8x16xf32>, tensor<8x16xf32>, index,
// CHECK-NOT:     linalg.transpose

// -----

// The rows of A from two dims of the tensor ([B, S, E] -> [S, B, E] folded into S·B rows,
// strides 4 and 12): no single row stride, so the transpose stays (IREE copies it).
func.func @rows_of_two_strides(%x: tensor<2x3x4xf32>, %w: tensor<4x5xf32>) -> tensor<6x5xf32> {
  %e = tensor.empty() : tensor<3x2x4xf32>
  %t = linalg.transpose ins(%x : tensor<2x3x4xf32>) outs(%e : tensor<3x2x4xf32>) permutation = [1, 0, 2]
  %a = tensor.collapse_shape %t [[0, 1], [2]] : tensor<3x2x4xf32> into tensor<6x4xf32>
  %c = tensor.empty() : tensor<6x5xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%c : tensor<6x5xf32>) -> tensor<6x5xf32>
  %r = mips.matmul ins(%a, %w : tensor<6x4xf32>, tensor<4x5xf32>) outs(%f : tensor<6x5xf32>) -> tensor<6x5xf32>
  return %r : tensor<6x5xf32>
}

// CHECK-LABEL: func.func @rows_of_two_strides(
// CHECK:         %[[T:.*]] = linalg.transpose
// CHECK-NEXT:    %[[A:.*]] = tensor.collapse_shape %[[T]]
// CHECK:         flow.dispatch @mips_exe_0::@mips_matmul_0[%{{.*}}](%[[A]], %w,

// -----

// The same transpose with B = 1 is a reshape: the rows have one stride (4) and are read in
// place, a 2-D product (no batch index).
func.func @unit_batch(%x: tensor<1x3x4xf32>, %w: tensor<4x5xf32>) -> tensor<3x5xf32> {
  %e = tensor.empty() : tensor<3x1x4xf32>
  %t = linalg.transpose ins(%x : tensor<1x3x4xf32>) outs(%e : tensor<3x1x4xf32>) permutation = [1, 0, 2]
  %a = tensor.collapse_shape %t [[0, 1], [2]] : tensor<3x1x4xf32> into tensor<3x4xf32>
  %c = tensor.empty() : tensor<3x5xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%c : tensor<3x5xf32>) -> tensor<3x5xf32>
  %r = mips.matmul ins(%a, %w : tensor<3x4xf32>, tensor<4x5xf32>) outs(%f : tensor<3x5xf32>) -> tensor<3x5xf32>
  return %r : tensor<3x5xf32>
}

// CHECK-LABEL: stream.executable private @mips_exe_0
// CHECK:         %[[A:.*]] = stream.binding.subspan %{{.*}} : !stream.binding -> memref<1x3x4xf32, strided<[12, 4, 1], offset: ?>>
// CHECK:         %{{[0-9]+}}, %[[AOFF:[0-9]+]], {{.*}} = memref.extract_strided_metadata %[[A]]
// CHECK-NEXT:    %[[ZERO:.*]] = arith.constant 0 : index
// CHECK-NEXT:    %[[A0:.*]] = arith.addi %[[AOFF]], %[[ZERO]] : index
// CHECK-NEXT:    %[[ROW_STRIDE:.*]] = arith.constant 4 : index
// CHECK-NEXT:    %[[ROW_AT:.*]] = arith.muli %{{.*}}, %[[ROW_STRIDE]] : index
// CHECK-NEXT:    %{{.*}} = arith.addi %[[A0]], %[[ROW_AT]] : index
// CHECK:         func.call @mips_matmul_f32(
// CHECK-LABEL: func.func @unit_batch(
// CHECK-NOT:     linalg.transpose
// CHECK:         flow.dispatch @mips_exe_0::@mips_matmul_0[%{{.*}}](%x, %w,

// -----

// The heads merged back ([H, S, D] -> [S, H, D]) after ·v: the transpose is all that uses the
// product, so its kernel writes C there by strides (head z at z * 4, rows 8 apart) and the
// dispatch's result is the transposed tensor.
func.func @merged_heads(%p: tensor<2x8x8xf32>, %v: tensor<2x8x4xf32>) -> tensor<8x8xf32> {
  %e = tensor.empty() : tensor<2x8x4xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<2x8x4xf32>) -> tensor<2x8x4xf32>
  %r = mips.batch_matmul ins(%p, %v : tensor<2x8x8xf32>, tensor<2x8x4xf32>) outs(%f : tensor<2x8x4xf32>) -> tensor<2x8x4xf32>
  %r4 = tensor.expand_shape %r [[0, 1], [2], [3]] output_shape [1, 2, 8, 4] : tensor<2x8x4xf32> into tensor<1x2x8x4xf32>
  %et = tensor.empty() : tensor<1x8x2x4xf32>
  %t = linalg.transpose ins(%r4 : tensor<1x2x8x4xf32>) outs(%et : tensor<1x8x2x4xf32>) permutation = [0, 2, 1, 3]
  %m = tensor.collapse_shape %t [[0, 1], [2, 3]] : tensor<1x8x2x4xf32> into tensor<8x8xf32>
  return %m : tensor<8x8xf32>
}

// CHECK-LABEL: stream.executable private @mips_exe_0
// CHECK:         %[[C:.*]] = stream.binding.subspan %{{.*}} : !stream.binding -> memref<1x8x2x4xf32, strided<[64, 8, 4, 1], offset: ?>>
// CHECK:         %[[CBASE:[0-9]+]], %[[COFF:[0-9]+]], {{.*}} = memref.extract_strided_metadata %[[C]]
// CHECK:         arith.remui %{{.*}}, %{{.*}} : index
// CHECK-NEXT:    %[[HEAD_STRIDE:.*]] = arith.constant 4 : index
// CHECK:         %[[ROW_STRIDE:.*]] = arith.constant 8 : index
// CHECK:         %[[CROWS:.*]] = arith.constant 8 : index
// CHECK-NEXT:    %[[CCOLS:.*]] = arith.constant 1 : index
// CHECK:         func.call @mips_matmul_f32({{.*}}, %[[CBASE]], %{{.*}}, %[[CROWS]], %[[CCOLS]],
// CHECK-LABEL: func.func @merged_heads(
// CHECK-NOT:     linalg.transpose
// CHECK:         %[[T:.*]] = flow.dispatch @mips_exe_0::@mips_matmul_0{{.*}} -> tensor<1x8x2x4xf32>
// CHECK-NEXT:    %{{.*}} = tensor.collapse_shape %[[T]] {{.*}} : tensor<1x8x2x4xf32> into tensor<8x8xf32>

// -----

// The product's result is also returned: it stays, and the transpose with it.
func.func @result_also_used(%p: tensor<2x8x8xf32>, %v: tensor<2x8x4xf32>) -> (tensor<2x8x4xf32>, tensor<8x2x4xf32>) {
  %e = tensor.empty() : tensor<2x8x4xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<2x8x4xf32>) -> tensor<2x8x4xf32>
  %r = mips.batch_matmul ins(%p, %v : tensor<2x8x8xf32>, tensor<2x8x4xf32>) outs(%f : tensor<2x8x4xf32>) -> tensor<2x8x4xf32>
  %et = tensor.empty() : tensor<8x2x4xf32>
  %t = linalg.transpose ins(%r : tensor<2x8x4xf32>) outs(%et : tensor<8x2x4xf32>) permutation = [1, 0, 2]
  return %r, %t : tensor<2x8x4xf32>, tensor<8x2x4xf32>
}

// CHECK-LABEL: func.func @result_also_used(
// CHECK:         %[[R:.*]] = flow.dispatch @mips_exe_0::@mips_matmul_0{{.*}} -> tensor<2x8x4xf32>
// CHECK:         linalg.transpose ins(%[[R]]
