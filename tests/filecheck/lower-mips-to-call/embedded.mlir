// RUN: mipsc opt %s -p lower-mips-to-call | filecheck %s
// RUN: mipsc opt %s -p "lower-mips-to-call{kernel_link=embedded}" | filecheck %s
// RUN: mipsc opt %s -p "lower-mips-to-call{target_cpu=znver4}" | filecheck %s --check-prefix=ZEN4
// RUN: mipsc opt %s -p "lower-mips-to-call{target_cpu=znver3}" | filecheck %s --check-prefix=AVX2
// RUN: not mipsc opt %s -p "lower-mips-to-call{kernel_link=embedded backend=openblas}" 2>&1 | filecheck %s --check-prefix=OPENBLAS
// RUN: not mipsc opt %s -p "lower-mips-to-call{kernel_link=static}" 2>&1 | filecheck %s --check-prefix=BAD
// RUN: env MIPSC_EMBEDDED_KERNELS=%t.missing.o not mipsc opt %s -p lower-mips-to-call 2>&1 | filecheck %s --check-prefix=MISSING
// RUN: printf 'mips_kernel_abi_version=1;' > %t.stale.o
// RUN: env MIPSC_EMBEDDED_KERNELS=%t.stale.o not mipsc opt %s -p lower-mips-to-call 2>&1 | filecheck %s --check-prefix=STALE

// The default link is embedded: the executable carries the kernel object (an absolute path, for
// the embedded-ELF variant whatever its CPU), the call goes straight to the object's
// mips_matmul_f32_embedded (hal.import.static: no import for a plugin to resolve), and each
// call gets workgroup-local memory for packing, allocated once per workgroup: as much as the
// target CPU's L2, up to 1 MiB (IREE's workers have their L2's size: a dispatch that asks for
// more does not run), so 1 MiB on Zen 4 and 256 KiB on the avx2 entry's smallest L2.
func.func @mm(%a: tensor<37x19xf32>, %b: tensor<19x23xf32>) -> tensor<37x23xf32> {
  %e = tensor.empty() : tensor<37x23xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<37x23xf32>) -> tensor<37x23xf32>
  %r = mips.matmul ins(%a, %b : tensor<37x19xf32>, tensor<19x23xf32>) outs(%f : tensor<37x23xf32>) -> tensor<37x23xf32>
  return %r : tensor<37x23xf32>
}

// CHECK:      stream.executable private @mips_exe_0 attributes {hal.executable.objects = #hal.executable.objects<{#hal.executable.target<"llvm-cpu", "embedded-elf-x86_64"> = [#hal.executable.object<{path = "/{{.*}}mips_kernels_embedded.o"}>]}>} {
// CHECK:        func.func private @mips_matmul_f32_embedded(memref<f32>, index, index, index, memref<f32>, index, index, index, memref<f32>, index, index, index, index, index, index, index, memref<[[WSB:[0-9]+]]xi8, #iree_codegen.workgroup_local>, index) -> i32 attributes {llvm.bareptr = true, hal.import.static}
// CHECK:        func.func @mips_matmul_0(
// CHECK:          %[[WS:.*]] = memref.alloc() : memref<[[WSB]]xi8, #iree_codegen.workgroup_local>
// CHECK-NEXT:     %[[WSBYTES:.*]] = arith.constant [[WSB]] : index
// CHECK:          scf.for
// CHECK-NOT:        memref.alloc
// CHECK:            %{{.*}} = func.call @mips_matmul_f32_embedded(%{{.*}}, %[[WS]], %[[WSBYTES]]) : ({{.*}}) -> i32
// CHECK-NOT:    mips_matmul_f32(

// ZEN4:         memref.alloc() : memref<1048576xi8, #iree_codegen.workgroup_local>
// ZEN4-NEXT:    arith.constant 1048576 : index
// AVX2:         memref.alloc() : memref<262144xi8, #iree_codegen.workgroup_local>
// AVX2-NEXT:    arith.constant 262144 : index

// OPENBLAS: the openblas kernel backend runs in the kernel plugin only
// OPENBLAS-SAME: --kernel-link=plugin
// BAD: unknown kernel link 'static' (known: embedded, plugin)
// MISSING: embedded.mlir:21:3: error: lower-mips-to-call: the kernel object for --kernel-link=embedded is missing ($MIPSC_EMBEDDED_KERNELS points at {{.*}}missing.o): build it with `make kernels`, or compile with --kernel-link=plugin
// STALE: error: lower-mips-to-call: the kernel object {{.*}}stale.o was built for another kernel ABI (version 1) than this mipsc's (version {{[0-9]+}}): rebuild it with `make kernels`
