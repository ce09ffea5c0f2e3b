// RUN: mipsc opt %s -p 'lower-mips-to-call{tile_m=12 tile_n=32 kernel_link=plugin}' --split-input-file | filecheck %s

// A linear's bias (its broadcast is the init): the 1-D bias is bound as it is and each tile is
// filled from it (mips_epilogue_f32 with bias_mode 2 = set) before the kernel accumulates
// (accumulate 1) into it; no broadcast is left for IREE to dispatch.
func.func @bias(%x: tensor<24x16xf32>, %w: tensor<64x16xf32>, %b: tensor<64xf32>) -> tensor<24x64xf32> {
  %e = tensor.empty() : tensor<24x64xf32>
  %init = linalg.broadcast ins(%b : tensor<64xf32>) outs(%e : tensor<24x64xf32>) dimensions = [0]
  %r = mips.matmul transpose_rhs ins(%x, %w : tensor<24x16xf32>, tensor<64x16xf32>) outs(%init : tensor<24x64xf32>) -> tensor<24x64xf32>
  return %r : tensor<24x64xf32>
}
// CHECK-LABEL: stream.executable private @mips_exe_0
// CHECK:         func.func private @mips_epilogue_f32(memref<f32>, index, index, index, memref<f32>, index, index, memref<f32>, index, index, index, index, index, index, index, index) -> () attributes {llvm.bareptr = true}
// CHECK:         func.func @mips_matmul_0(%{{.*}}: !stream.binding, %{{.*}}: !stream.binding, %[[BB:.*]]: !stream.binding, %[[BC:.*]]: !stream.binding,
// CHECK-DAG:       %[[C:.*]] = stream.binding.subspan %[[BC]][%{{.*}}] : !stream.binding -> memref<24x64xf32, strided<[64, 1], offset: ?>>
// CHECK-DAG:       %[[B:.*]] = stream.binding.subspan %[[BB]][%{{.*}}] : !stream.binding -> memref<64xf32, strided<[1], offset: ?>>
// CHECK:           scf.for
// CHECK:             memref.subview %[[B]][%[[J0:.*]]] [%[[TN:.*]]] [1]
// CHECK:             %[[NONE:.*]] = arith.constant 0 : index
// CHECK-NEXT:        %[[SET:.*]] = arith.constant 2 : index
// CHECK-NEXT:        func.call @mips_epilogue_f32({{.*}}, %[[SET]], %[[NONE]], %[[NONE]])
// CHECK-NEXT:        %[[ACC:.*]] = arith.constant 1 : index
// CHECK-NEXT:        func.call @mips_matmul_f32({{.*}}, %[[ACC]])
// CHECK-NEXT:      }
// CHECK-LABEL: func.func @bias(
// CHECK-NOT:     linalg.broadcast
// CHECK:         flow.dispatch @mips_exe_0::@mips_matmul_0[{{.*}}](%x, %w, %b, {{.*}}) : (tensor<24x16xf32>, tensor<64x16xf32>, tensor<64xf32>, {{.*}}) -> tensor<24x64xf32>

// -----

// GELU then a residual add: the residual is bound after A and B, and each tile's epilogue
// call (activation 2 = gelu, binary 1 = add) follows the kernel call on the same C tile.
func.func @gelu_add(%x: tensor<24x16xbf16>, %w: tensor<16x64xbf16>, %r: tensor<24x64xbf16>) -> tensor<24x64xbf16> {
  %e = tensor.empty() : tensor<24x64xbf16>
  %z = arith.constant 0.0 : bf16
  %f = linalg.fill ins(%z : bf16) outs(%e : tensor<24x64xbf16>) -> tensor<24x64xbf16>
  %y = mips.matmul ins(%x, %w : tensor<24x16xbf16>, tensor<16x64xbf16>) outs(%f : tensor<24x64xbf16>) activation(gelu) binary(add, %r : tensor<24x64xbf16>) -> tensor<24x64xbf16>
  return %y : tensor<24x64xbf16>
}
// CHECK-LABEL: stream.executable private @mips_exe_0
// CHECK:         func.func @mips_matmul_0(%{{.*}}: !stream.binding, %{{.*}}: !stream.binding, %[[BO:.*]]: !stream.binding, %[[BC:.*]]: !stream.binding,
// CHECK-DAG:       %[[C:.*]] = stream.binding.subspan %[[BC]]
// CHECK-DAG:       %[[O:.*]] = stream.binding.subspan %[[BO]]
// CHECK:           scf.for
// CHECK:             %[[CT:.*]] = memref.subview %[[C]]
// CHECK-NEXT:        %[[CBASE:.*]], %[[COFF:.*]], %{{.*}}, %{{.*}}, %[[CS0:.*]], %[[CS1:.*]] = memref.extract_strided_metadata %[[CT]]
// CHECK-NEXT:        %[[ACC:.*]] = arith.constant 0 : index
// CHECK-NEXT:        func.call @mips_matmul_bf16({{.*}}, %[[CBASE]], %[[COFF]], %[[CS0]], %[[CS1]], {{.*}}, %[[ACC]])
// CHECK-NEXT:        %[[OT:.*]] = memref.subview %[[O]]
// CHECK-NEXT:        %[[OBASE:.*]], %[[OOFF:.*]], %{{.*}}, %{{.*}}, %[[OS0:.*]], %[[OS1:.*]] = memref.extract_strided_metadata %[[OT]]
// CHECK-NEXT:        %[[NONE:.*]] = arith.constant 0 : index
// CHECK-NEXT:        %[[GELU:.*]] = arith.constant 2 : index
// CHECK-NEXT:        %[[ADD:.*]] = arith.constant 1 : index
// CHECK-NEXT:        func.call @mips_epilogue_bf16(%[[CBASE]], %[[COFF]], %[[CS0]], %[[CS1]], %[[CBASE]], %[[NONE]], %[[NONE]], %[[OBASE]], %[[OOFF]], %[[OS0]], %[[OS1]], %{{.*}}, %{{.*}}, %[[NONE]], %[[GELU]], %[[ADD]])
// CHECK-LABEL: func.func @gelu_add(
// CHECK:         flow.dispatch @mips_exe_0::@mips_matmul_0[{{.*}}](%x, %w, %r, {{.*}}) : (tensor<24x16xbf16>, tensor<16x64xbf16>, tensor<24x64xbf16>, {{.*}}) -> tensor<24x64xbf16>

// -----

// Both at once: A read by strides from the tensor it views (strided_operands), and the bias
// fill and GELU epilogue on the same C tile.
func.func @strided_a_bias_gelu(%x: tensor<1x6x4xf32>, %w: tensor<8x4xf32>, %b: tensor<8xf32>) -> tensor<6x8xf32> {
  %e = tensor.empty() : tensor<6x1x4xf32>
  %t = linalg.transpose ins(%x : tensor<1x6x4xf32>) outs(%e : tensor<6x1x4xf32>) permutation = [1, 0, 2]
  %a = tensor.collapse_shape %t [[0, 1], [2]] : tensor<6x1x4xf32> into tensor<6x4xf32>
  %c = tensor.empty() : tensor<6x8xf32>
  %init = linalg.broadcast ins(%b : tensor<8xf32>) outs(%c : tensor<6x8xf32>) dimensions = [0]
  %r = mips.matmul transpose_rhs ins(%a, %w : tensor<6x4xf32>, tensor<8x4xf32>) outs(%init : tensor<6x8xf32>) activation(gelu) -> tensor<6x8xf32>
  return %r : tensor<6x8xf32>
}
// CHECK-LABEL: stream.executable private @mips_exe_0
// CHECK:         func.func @mips_matmul_0(%[[BA:.*]]: !stream.binding, %{{.*}}: !stream.binding, %{{.*}}: !stream.binding, %{{.*}}: !stream.binding,
// CHECK:           %[[A:.*]] = stream.binding.subspan %[[BA]][%{{.*}}] : !stream.binding -> memref<1x6x4xf32, strided<[24, 4, 1], offset: ?>>
// CHECK:           scf.for
// CHECK:             %[[ABASE:.*]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} = memref.extract_strided_metadata %[[A]]
// CHECK:             %[[SET:.*]] = arith.constant 2 : index
// CHECK-NEXT:        func.call @mips_epilogue_f32({{.*}}, %[[SET]], %{{.*}}, %{{.*}})
// CHECK-NEXT:        %[[ACC:.*]] = arith.constant 1 : index
// CHECK-NEXT:        func.call @mips_matmul_f32(%[[ABASE]], {{.*}}, %[[ACC]])
// CHECK-NEXT:        %[[NONE:.*]] = arith.constant 0 : index
// CHECK-NEXT:        %[[GELU:.*]] = arith.constant 2 : index
// CHECK-NEXT:        func.call @mips_epilogue_f32({{.*}}, %[[NONE]], %[[GELU]], %[[NONE]])
// CHECK-LABEL: func.func @strided_a_bias_gelu(
// CHECK-NOT:     linalg.transpose
// CHECK:         flow.dispatch @mips_exe_0::@mips_matmul_0[{{.*}}](%x, %w, %b, {{.*}}) : (tensor<1x6x4xf32>, tensor<8x4xf32>, tensor<8xf32>, {{.*}}) -> tensor<6x8xf32>
