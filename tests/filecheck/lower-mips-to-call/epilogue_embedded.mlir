// RUN: mipsc opt %s -p 'lower-mips-to-call{tile_m=12 tile_n=32 kernel_link=embedded}' | filecheck %s

// Embedded kernels: the bias fill and the epilogue go to the object's
// mips_epilogue_f32_embedded, declared as the matmul's entry point is (hal.import.static, an
// i32 result) but without a workspace; no import is left for a plugin to resolve.
func.func @bias_gelu(%x: tensor<24x16xf32>, %w: tensor<64x16xf32>, %b: tensor<64xf32>) -> tensor<24x64xf32> {
  %e = tensor.empty() : tensor<24x64xf32>
  %init = linalg.broadcast ins(%b : tensor<64xf32>) outs(%e : tensor<24x64xf32>) dimensions = [0]
  %r = mips.matmul transpose_rhs ins(%x, %w : tensor<24x16xf32>, tensor<64x16xf32>) outs(%init : tensor<24x64xf32>) activation(gelu) -> tensor<24x64xf32>
  return %r : tensor<24x64xf32>
}
// CHECK:       stream.executable private @mips_exe_0 attributes {hal.executable.objects
// CHECK-DAG:     func.func private @mips_matmul_f32_embedded({{.*}}, memref<{{[0-9]+}}xi8, #iree_codegen.workgroup_local>, index) -> i32 attributes {llvm.bareptr = true, hal.import.static}
// CHECK-DAG:     func.func private @mips_epilogue_f32_embedded(memref<f32>, index, index, index, memref<f32>, index, index, memref<f32>, index, index, index, index, index, index, index, index) -> i32 attributes {llvm.bareptr = true, hal.import.static}
// CHECK:         func.func @mips_matmul_0(
// CHECK:           %[[WS:.*]] = memref.alloc() : memref<{{[0-9]+}}xi8, #iree_codegen.workgroup_local>
// CHECK:           scf.for
// CHECK:             %[[SET:.*]] = arith.constant 2 : index
// CHECK-NEXT:        %{{.*}} = func.call @mips_epilogue_f32_embedded({{.*}}, %[[SET]], %{{.*}}, %{{.*}}) : ({{.*}}) -> i32
// CHECK-NEXT:        %[[ACC:.*]] = arith.constant 1 : index
// CHECK-NEXT:        %{{.*}} = func.call @mips_matmul_f32_embedded({{.*}}, %[[ACC]], %[[WS]], %{{.*}}) : ({{.*}}) -> i32
// CHECK:             %[[GELU:.*]] = arith.constant 2 : index
// CHECK-NEXT:        %{{.*}} = func.call @mips_epilogue_f32_embedded({{.*}}, %[[GELU]], %{{.*}}) : ({{.*}}) -> i32
// CHECK-NOT:     @mips_epilogue_f32(
// CHECK-NOT:     @mips_matmul_f32(
