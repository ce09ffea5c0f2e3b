// RUN: mipsc opt %s -p 'lower-mips-to-call{backend=openblas}' | filecheck %s
// RUN: mipsc opt %s -p "lower-mips-to-call{kernel_link=plugin}" | filecheck %s --check-prefix=BUILTIN
// RUN: mipsc opt %s -p 'lower-mips-to-call{backend=openblas}' --remarks 2>&1 | filecheck %s --check-prefix=REMARK
// RUN: not mipsc opt %s -p 'lower-mips-to-call{backend=mkl}' 2>&1 | filecheck %s --check-prefix=BAD

// backend=openblas: the f32 matmul (transposed B, accumulating, as a linear with bias) calls
// OpenBLAS's kernel, with the same arguments as the builtin one; bf16 has no OpenBLAS gemm
// and keeps the builtin kernel.
func.func @linear_f32(%x: tensor<37x19xf32>, %w: tensor<23x19xf32>, %bias: tensor<37x23xf32>) -> tensor<37x23xf32> {
  %r = mips.matmul transpose_rhs ins(%x, %w : tensor<37x19xf32>, tensor<23x19xf32>) outs(%bias : tensor<37x23xf32>) -> tensor<37x23xf32>
  return %r : tensor<37x23xf32>
}

func.func @mm_bf16(%a: tensor<8x16xbf16>, %b: tensor<16x4xbf16>) -> tensor<8x4xbf16> {
  %e = tensor.empty() : tensor<8x4xbf16>
  %z = arith.constant 0.0 : bf16
  %f = linalg.fill ins(%z : bf16) outs(%e : tensor<8x4xbf16>) -> tensor<8x4xbf16>
  %r = mips.matmul ins(%a, %b : tensor<8x16xbf16>, tensor<16x4xbf16>) outs(%f : tensor<8x4xbf16>) -> tensor<8x4xbf16>
  return %r : tensor<8x4xbf16>
}

// CHECK:       stream.executable private @mips_exe_1 {
// CHECK:         func.func private @mips_matmul_bf16(memref<bf16>, index, index, index, memref<bf16>, index, index, index, memref<bf16>, index, index, index, index, index, index, index) -> () attributes {llvm.bareptr = true}
// CHECK:         func.call @mips_matmul_bf16(
// CHECK:       stream.executable private @mips_exe_0 {
// CHECK:         func.func private @mips_matmul_openblas_f32(memref<f32>, index, index, index, memref<f32>, index, index, index, memref<f32>, index, index, index, index, index, index, index) -> () attributes {llvm.bareptr = true}
// CHECK:         %[[ACC:.*]] = arith.constant 1 : index
// CHECK-NEXT:    func.call @mips_matmul_openblas_f32(%{{.*}}, %[[ACC]]) : (memref<f32>, index, index, index, memref<f32>, index, index, index, memref<f32>, index, index, index, index, index, index, index) -> ()
// CHECK-NOT:   mips_matmul_f32

// The default backend: the builtin kernels only.
// BUILTIN-NOT: openblas
// BUILTIN:     func.call @mips_matmul_bf16(
// BUILTIN:     func.call @mips_matmul_f32(
// BUILTIN-NOT: openblas

// Each lowered op says which kernel its tiles call (mipsc compile --report shows the same).
// REMARK: openblas.mlir:10:3: remark: [lower-mips-to-call] mips.matmul calls mips_matmul_openblas_f32 per {{[0-9]+x[0-9]+}} tile
// REMARK: openblas.mlir:18:3: remark: [lower-mips-to-call] mips.matmul calls mips_matmul_bf16 per {{[0-9]+x[0-9]+}} tile

// BAD: error: lower-mips-to-call: unknown backend 'mkl' (known: builtin, openblas)
