// RUN: mipsc opt %s -p 'lower-mips-to-call{tile_m=12 tile_n=32 kernel_link=plugin}' --split-input-file | filecheck %s

// B packed at load, with a bias (its broadcast is the init), GELU and a gating product: each
// tile makes ONE call, mips_matmul_packed_epilogue_bf16 (the epilogue in the kernel's store
// phase), with A, the packed B at the tile's panel, C, the sizes and accumulate 0, then the
// bias's tile, the other tensor's tile and the kinds (bias 2 = set: the product starts from
// the bias; activation 2 = gelu; binary 2 = mul). No mips_epilogue_bf16 call is left.
util.global private @w.packedT : tensor<1024xbf16>
func.func @bias_gelu_mul(%a: tensor<24x16xbf16>, %b: tensor<64xbf16>, %g: tensor<24x64xbf16>) -> tensor<24x64xbf16> {
  %p = util.global.load @w.packedT : tensor<1024xbf16>
  %e = tensor.empty() : tensor<24x64xbf16>
  %init = linalg.broadcast ins(%b : tensor<64xbf16>) outs(%e : tensor<24x64xbf16>) dimensions = [0]
  %r = mips.matmul packed_rhs ins(%a, %p : tensor<24x16xbf16>, tensor<1024xbf16>) outs(%init : tensor<24x64xbf16>) activation(gelu) binary(mul, %g : tensor<24x64xbf16>) -> tensor<24x64xbf16>
  return %r : tensor<24x64xbf16>
}
// CHECK-LABEL: stream.executable private @mips_exe_0
// CHECK-NOT:     mips_epilogue_bf16
// CHECK:         func.func private @mips_matmul_packed_epilogue_bf16(memref<bf16>, index, index, index, memref<bf16>, index, index, index, memref<bf16>, index, index, index, index, index, index, index, memref<bf16>, index, index, memref<bf16>, index, index, index, index, index, index) -> () attributes {llvm.bareptr = true}
// CHECK:         func.func @mips_matmul_0(%{{.*}}: !stream.binding, %{{.*}}: !stream.binding, %[[BB:.*]]: !stream.binding, %[[BO:.*]]: !stream.binding, %[[BC:.*]]: !stream.binding,
// CHECK-DAG:       %[[C:.*]] = stream.binding.subspan %[[BC]][%{{.*}}] : !stream.binding -> memref<24x64xbf16, strided<[64, 1], offset: ?>>
// CHECK-DAG:       %[[B:.*]] = stream.binding.subspan %[[BB]][%{{.*}}] : !stream.binding -> memref<64xbf16, strided<[1], offset: ?>>
// CHECK-DAG:       %[[O:.*]] = stream.binding.subspan %[[BO]][%{{.*}}] : !stream.binding -> memref<24x64xbf16, strided<[64, 1], offset: ?>>
// CHECK:           scf.for
// CHECK:             %[[KP:.*]] = arith.constant 16 : index
// CHECK:             %[[PANEL:.*]] = arith.constant 32 : index
// CHECK-NEXT:        %[[CT:.*]] = memref.subview %[[C]]
// CHECK-NEXT:        %[[CBASE:.*]], %[[COFF:.*]], %{{.*}}, %{{.*}}, %[[CS0:.*]], %[[CS1:.*]] = memref.extract_strided_metadata %[[CT]]
// CHECK:             %[[BT:.*]] = memref.subview %[[B]]
// CHECK-NEXT:        %[[BBASE:.*]], %[[BOFF:.*]], %{{.*}}, %[[BS:.*]] = memref.extract_strided_metadata %[[BT]]
// CHECK-NEXT:        %[[OT:.*]] = memref.subview %[[O]]
// CHECK-NEXT:        %[[OBASE:.*]], %[[OOFF:.*]], %{{.*}}, %{{.*}}, %[[OS0:.*]], %[[OS1:.*]] = memref.extract_strided_metadata %[[OT]]
// CHECK-NEXT:        %[[SET:.*]] = arith.constant 2 : index
// CHECK-NEXT:        %[[GELU:.*]] = arith.constant 2 : index
// CHECK-NEXT:        %[[MUL:.*]] = arith.constant 2 : index
// CHECK-NEXT:        %[[ACC:.*]] = arith.constant 0 : index
// CHECK-NEXT:        func.call @mips_matmul_packed_epilogue_bf16(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[KP]], %[[PANEL]], %[[CBASE]], %[[COFF]], %[[CS0]], %[[CS1]], %{{.*}}, %{{.*}}, %{{.*}}, %[[ACC]], %[[BBASE]], %[[BOFF]], %[[BS]], %[[OBASE]], %[[OOFF]], %[[OS0]], %[[OS1]], %[[SET]], %[[GELU]], %[[MUL]])
// CHECK-NEXT:      }
// CHECK-LABEL: func.func @bias_gelu_mul(
// CHECK-NOT:     linalg.broadcast
// CHECK:         flow.dispatch @mips_exe_0::@mips_matmul_0[{{.*}}](%a, %p, %b, %g, {{.*}}) : (tensor<24x16xbf16>, tensor<1024xbf16>, tensor<64xbf16>, tensor<24x64xbf16>, {{.*}}) -> tensor<24x64xbf16>

// -----

// A tied init (a residual accumulated into) and ReLU, f32: the fused call accumulates
// (accumulate 1) with no bias (mode 0, its arguments any base and zeros).
util.global private @w.packedT : tensor<1024xf32>
func.func @acc_relu(%a: tensor<24x16xf32>, %c: tensor<24x64xf32>) -> tensor<24x64xf32> {
  %p = util.global.load @w.packedT : tensor<1024xf32>
  %r = mips.matmul packed_rhs ins(%a, %p : tensor<24x16xf32>, tensor<1024xf32>) outs(%c : tensor<24x64xf32>) activation(relu) -> tensor<24x64xf32>
  return %r : tensor<24x64xf32>
}
// CHECK-LABEL: stream.executable private @mips_exe_0
// CHECK-NOT:     mips_epilogue_f32
// CHECK:         scf.for
// CHECK:             arith.constant 32 : index
// CHECK-NEXT:        memref.subview
// CHECK-NEXT:        %[[CBASE:.*]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} = memref.extract_strided_metadata
// CHECK-NEXT:        %[[ZERO:.*]] = arith.constant 0 : index
// CHECK-NEXT:        %[[RELU:.*]] = arith.constant 1 : index
// CHECK-NEXT:        %[[ACC:.*]] = arith.constant 1 : index
// CHECK-NEXT:        func.call @mips_matmul_packed_epilogue_f32({{.*}}, %[[ACC]], %[[CBASE]], %[[ZERO]], %[[ZERO]], %[[CBASE]], %[[ZERO]], %[[ZERO]], %[[ZERO]], %[[ZERO]], %[[RELU]], %[[ZERO]])
// CHECK-LABEL: func.func @acc_relu(
// CHECK:         flow.dispatch @mips_exe_0::@mips_matmul_0[{{.*}}](%a, %p, %c, {{.*}}) -> %c{{.*}}
