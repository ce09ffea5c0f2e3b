// RUN: mipsc opt %s -p "lower-mips-to-call{kernel_link=embedded}" | filecheck %s

// A B packed at load on the embedded route: the pack executable and the matmul executable both
// carry the kernel object; the pack calls mips_pack_b_f32_embedded (no workspace), the tiles
// call mips_matmul_packed_epilogue_f32_embedded (the ReLU in the kernel's store phase) with the
// workspace for the A panels; no import is left for a plugin to resolve.
util.global private @w = dense<1.0> : tensor<300x19xf32>
util.global private @w.packedT : tensor<6400xf32>
util.initializer {
  %w = util.global.load @w : tensor<300x19xf32>
  %b = util.optimization_barrier %w : tensor<300x19xf32>
  %p = mips.pack_rhs transpose %b : tensor<300x19xf32> -> tensor<6400xf32>
  util.global.store %p, @w.packedT : tensor<6400xf32>
  util.return
}
func.func @main(%a: tensor<8x19xf32>) -> tensor<8x300xf32> {
  %p = util.global.load @w.packedT : tensor<6400xf32>
  %e = tensor.empty() : tensor<8x300xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<8x300xf32>) -> tensor<8x300xf32>
  %r = mips.matmul packed_rhs ins(%a, %p : tensor<8x19xf32>, tensor<6400xf32>) outs(%f : tensor<8x300xf32>) activation(relu) -> tensor<8x300xf32>
  return %r : tensor<8x300xf32>
}

// CHECK:      stream.executable private @mips_exe_1 attributes {hal.executable.objects = #hal.executable.objects<{#hal.executable.target<"llvm-cpu", "embedded-elf-x86_64"> = [#hal.executable.object<{path = "/{{.*}}mips_kernels_embedded.o"}>]}>} {
// CHECK:        func.func private @mips_matmul_packed_epilogue_f32_embedded({{.*}}, memref<{{[0-9]+}}xi8, #iree_codegen.workgroup_local>, index) -> i32 attributes {llvm.bareptr = true, hal.import.static}
// CHECK-NOT:    mips_epilogue_f32
// CHECK:          %[[WS:.*]] = memref.alloc() : memref<{{[0-9]+}}xi8, #iree_codegen.workgroup_local>
// CHECK:            %[[KP:.*]] = arith.constant 20 : index
// CHECK:            %[[PANEL:.*]] = arith.constant 32 : index
// CHECK:            %{{.*}} = func.call @mips_matmul_packed_epilogue_f32_embedded(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[KP]], %[[PANEL]], {{.*}}, %[[WS]], %{{.*}}) : ({{.*}}) -> i32
// CHECK:      stream.executable private @mips_exe_0 attributes {hal.executable.objects = #hal.executable.objects<{#hal.executable.target<"llvm-cpu", "embedded-elf-x86_64"> = [#hal.executable.object<{path = "/{{.*}}mips_kernels_embedded.o"}>]}>} {
// CHECK:        func.func private @mips_pack_b_f32_embedded(memref<f32>, index, index, index, memref<f32>, index, index, index) -> i32 attributes {llvm.bareptr = true, hal.import.static}
// CHECK:            %{{.*}} = func.call @mips_pack_b_f32_embedded({{.*}}) : ({{.*}}) -> i32
// CHECK-NOT:  @mips_pack_b_f32(
// CHECK-NOT:  @mips_matmul_packed_f32(
// CHECK-NOT:  @mips_matmul_packed_epilogue_f32(
