// RUN: mipsc opt %s -p "lower-mips-to-call{kernel_link=plugin}" --split-input-file | filecheck %s

// Dynamic M, N, K: dims come from tensor.dim; B is described by its own rows.
func.func @dyn(%a: tensor<?x?xf16>, %b: tensor<?x?xf16>) -> tensor<?x?xf16> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %m = tensor.dim %a, %c0 : tensor<?x?xf16>
  %n = tensor.dim %b, %c1 : tensor<?x?xf16>
  %e = tensor.empty(%m, %n) : tensor<?x?xf16>
  %z = arith.constant 0.0 : f16
  %f = linalg.fill ins(%z : f16) outs(%e : tensor<?x?xf16>) -> tensor<?x?xf16>
  %r = mips.matmul ins(%a, %b : tensor<?x?xf16>, tensor<?x?xf16>) outs(%f : tensor<?x?xf16>) -> tensor<?x?xf16>
  return %r : tensor<?x?xf16>
}

// CHECK:       func.func private @mips_matmul_f16(memref<f16>, index, index, index, memref<f16>,
// CHECK:       func.func @mips_matmul_0(%{{.*}}: !stream.binding, %{{.*}}: !stream.binding, %{{.*}}: !stream.binding, %[[M:.*]]: index, %[[N:.*]]: index, %[[K:.*]]: index, %{{.*}}: index, %[[KB:.*]]: index, %{{.*}}: index, %[[MI:.*]]: index, %[[NI:.*]]: index, %{{.*}}: index) {
// CHECK:         stream.binding.subspan %{{.*}} : !stream.binding -> memref<?x?xf16, strided<[?, 1], offset: ?>>{%[[M]], %[[K]]}
// CHECK-NEXT:    stream.binding.subspan %{{.*}} : !stream.binding -> memref<?x?xf16, strided<[?, 1], offset: ?>>{%[[KB]], %[[N]]}
// C is viewed with the sizes the init (or, with none, the product) says it has.
// CHECK-NEXT:    stream.binding.subspan %{{.*}} : !stream.binding -> memref<?x?xf16, strided<[?, 1], offset: ?>>{%[[MI]], %[[NI]]}
// CHECK-LABEL: func.func @dyn(
// CHECK-NOT:     linalg.fill
// CHECK:         %[[HM:.*]] = tensor.dim %[[A:.*]], %{{.*}} : tensor<?x?xf16>
// CHECK:         %[[HK:.*]] = tensor.dim %[[A]], %{{.*}} : tensor<?x?xf16>
// CHECK:         %[[HKB:.*]] = tensor.dim %[[B:.*]], %{{.*}} : tensor<?x?xf16>
// CHECK:         %[[HN:.*]] = tensor.dim %[[B]], %{{.*}} : tensor<?x?xf16>
// CHECK:         %[[ONE:.*]] = arith.constant 1 : index
// The host checks that the dynamic K of A and of B agree (the kernel's own refusal fails the
// dispatch on the plugin route only): the batch, rows and columns are the same values here.
// CHECK-NEXT:    %[[SAME:.*]] = arith.cmpi eq, %[[HK]], %[[HKB]] : index
// CHECK-NEXT:    cf.assert %[[SAME]], "the sizes of a matmul's operands do not agree at run time
// CHECK-NEXT:    flow.dispatch @mips_exe_0::@mips_matmul_0[%[[HM]], %[[HN]], %[[HK]], %[[ONE]]](%[[A]], %[[B]], %[[HM]], %[[HN]], %[[HK]], %[[ONE]], %[[HKB]], %[[ONE]], %[[HM]], %[[HN]], %[[ONE]]) : (tensor<?x?xf16>{%[[HM]], %[[HK]]}, tensor<?x?xf16>{%[[HKB]], %[[HN]]}, index, index, index, index, index, index, index, index, index) -> tensor<?x?xf16>{%[[HM]], %[[HN]]}

// -----

// A non-zero init is tied to the result and the kernel accumulates into it (C += A·B).
func.func @acc(%a: tensor<4x5xbf16>, %b: tensor<5x3xbf16>, %c: tensor<4x3xbf16>) -> tensor<4x3xbf16> {
  %r = mips.matmul ins(%a, %b : tensor<4x5xbf16>, tensor<5x3xbf16>) outs(%c : tensor<4x3xbf16>) -> tensor<4x3xbf16>
  return %r : tensor<4x3xbf16>
}

// CHECK:       func.func private @mips_matmul_bf16(
// CHECK:         %[[ACC:.*]] = arith.constant 1 : index
// CHECK-NEXT:    func.call @mips_matmul_bf16({{.*}}, %[[ACC]])
// CHECK:       func.func @acc(%{{.*}}: tensor<4x5xbf16>, %{{.*}}: tensor<5x3xbf16>, %[[C:.*]]: tensor<4x3xbf16>)
// CHECK:         flow.dispatch @mips_exe_0::@mips_matmul_0[{{.*}}](%{{.*}}, %{{.*}}, %[[C]], {{.*}}) : (tensor<4x5xbf16>, tensor<5x3xbf16>, tensor<4x3xbf16>, index, index, index, index, index, index, index, index, index) -> %[[C]]

// -----

// Identical matmuls share one executable; different ones get their own, uniquely named entries.
func.func @share(%a: tensor<8x8xf32>, %b: tensor<8x8xf32>, %c: tensor<8x8xf32>, %d: tensor<4x8xf32>) -> (tensor<8x8xf32>, tensor<8x8xf32>, tensor<4x8xf32>) {
  %r1 = mips.matmul ins(%a, %b : tensor<8x8xf32>, tensor<8x8xf32>) outs(%c : tensor<8x8xf32>) -> tensor<8x8xf32>
  %r2 = mips.matmul ins(%b, %a : tensor<8x8xf32>, tensor<8x8xf32>) outs(%c : tensor<8x8xf32>) -> tensor<8x8xf32>
  %e = tensor.empty() : tensor<4x8xf32>
  %r3 = mips.matmul ins(%d, %a : tensor<4x8xf32>, tensor<8x8xf32>) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %r1, %r2, %r3 : tensor<8x8xf32>, tensor<8x8xf32>, tensor<4x8xf32>
}

// CHECK-COUNT-2: stream.executable private
// CHECK-NOT:     stream.executable private
// CHECK-LABEL:   func.func @share(
// CHECK:         flow.dispatch @mips_exe_0::@mips_matmul_0
// CHECK:         flow.dispatch @mips_exe_0::@mips_matmul_0
// CHECK:         flow.dispatch @mips_exe_1::@mips_matmul_1
