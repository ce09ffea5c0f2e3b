// RUN: mipsc opt %s -p "lower-mips-to-call{kernel_link=plugin}" | filecheck %s

// A batch_matmul with a transposed lhs (stored [B, K, M]): each tile is a [1, rows, cols] view
// of one batch (not rank-reduced: IREE 3.13 crashed on the ambiguous view when N = 1); A's
// tile is sliced in its stored order and its strides swapped for the kernel.
func.func @batched(%a: tensor<4x6x5xf32>, %b: tensor<4x6x3xf32>) -> tensor<4x5x3xf32> {
  %e = tensor.empty() : tensor<4x5x3xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<4x5x3xf32>) -> tensor<4x5x3xf32>
  %r = mips.batch_matmul transpose_lhs ins(%a, %b : tensor<4x6x5xf32>, tensor<4x6x3xf32>) outs(%f : tensor<4x5x3xf32>) -> tensor<4x5x3xf32>
  return %r : tensor<4x5x3xf32>
}

// CHECK-LABEL: stream.executable private @mips_exe_0
// CHECK:         %[[A:.*]] = stream.binding.subspan %{{.*}} : !stream.binding -> memref<4x6x5xf32, strided<[30, 5, 1], offset: ?>>
// CHECK:         scf.for
// CHECK:           %[[AT:.*]] = memref.subview %[[A]][%[[Z:[0-9]+]], 0, %[[I0:[0-9]+]]] [1, %[[K:[0-9]+]], %[[TM:[0-9]+]]] [1, 1, 1] : memref<4x6x5xf32, strided<[30, 5, 1], offset: ?>> to memref<1x?x?xf32, strided<[30, 5, 1], offset: ?>>
// CHECK-NEXT:      %[[ABASE:[0-9]+]], %[[AOFF:[0-9]+]], %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %[[AS1:[0-9]+]], %[[AS2:[0-9]+]] = memref.extract_strided_metadata %[[AT]]
// CHECK:           memref.subview %{{.*}}[%[[Z]], 0, %{{.*}}] [1, %[[K]], %{{.*}}] [1, 1, 1] : memref<4x6x3xf32, strided<[18, 3, 1], offset: ?>> to memref<1x?x?xf32, strided<[18, 3, 1], offset: ?>>
// CHECK:           memref.subview %{{.*}}[%[[Z]], %[[I0]], %{{.*}}] [1, %[[TM]], %{{.*}}] [1, 1, 1] : memref<4x5x3xf32, strided<[15, 3, 1], offset: ?>> to memref<1x?x?xf32, strided<[15, 3, 1], offset: ?>>
// The lhs is passed with its strides swapped: (col stride, row stride) of the stored tile.
// CHECK:           func.call @mips_matmul_f32(%[[ABASE]], %[[AOFF]], %[[AS2]], %[[AS1]],
// CHECK-LABEL: func.func @batched(
// CHECK:         flow.dispatch @mips_exe_0::@mips_matmul_0
