// RUN: mipsc opt %s -p "lower-mips-to-call{kernel_link=plugin workers=2}" | filecheck %s
// RUN: mipsc opt %s -p "lower-mips-to-call{kernel_link=plugin workers=1}" | filecheck %s --check-prefix=ONE

// Thin products (at most 4 rows of C, a decode step's M = 1) are bound by reading B once:
// their tiles come from mipsc.tiling.choose_thin_tiles, not the GEMM cost model. Here 2 MiB of
// B per tile (8 tiles of 256 f32 columns, 4 of 512 bf16 ones: a multiple of the 2 workers).
func.func @decode_f32(%x: tensor<1x2048xf32>, %w: tensor<2048x2048xf32>) -> tensor<1x2048xf32> {
  %e = tensor.empty() : tensor<1x2048xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x2048xf32>) -> tensor<1x2048xf32>
  %r = mips.matmul ins(%x, %w : tensor<1x2048xf32>, tensor<2048x2048xf32>) outs(%f : tensor<1x2048xf32>) -> tensor<1x2048xf32>
  return %r : tensor<1x2048xf32>
}

func.func @decode_bf16(%x: tensor<1x2048xbf16>, %w: tensor<2048x2048xbf16>) -> tensor<1x2048xbf16> {
  %e = tensor.empty() : tensor<1x2048xbf16>
  %z = arith.constant 0.0 : bf16
  %f = linalg.fill ins(%z : bf16) outs(%e : tensor<1x2048xbf16>) -> tensor<1x2048xbf16>
  %r = mips.matmul ins(%x, %w : tensor<1x2048xbf16>, tensor<2048x2048xbf16>) outs(%f : tensor<1x2048xbf16>) -> tensor<1x2048xbf16>
  return %r : tensor<1x2048xbf16>
}

// Five rows: the GEMM cost model (tiles of at most 256 columns).
func.func @five_rows(%x: tensor<5x2048xbf16>, %w: tensor<2048x2048xbf16>) -> tensor<5x2048xbf16> {
  %e = tensor.empty() : tensor<5x2048xbf16>
  %z = arith.constant 0.0 : bf16
  %f = linalg.fill ins(%z : bf16) outs(%e : tensor<5x2048xbf16>) -> tensor<5x2048xbf16>
  %r = mips.matmul ins(%x, %w : tensor<5x2048xbf16>, tensor<2048x2048xbf16>) outs(%f : tensor<5x2048xbf16>) -> tensor<5x2048xbf16>
  return %r : tensor<5x2048xbf16>
}

// The executables print last first.
// CHECK:      stream.executable.export public @mips_matmul_2 workgroups
// CHECK-NEXT:   arith.constant 12 : index
// CHECK-NEXT:   arith.constant 256 : index
// CHECK:      stream.executable.export public @mips_matmul_1 workgroups
// CHECK-NEXT:   arith.constant 12 : index
// CHECK-NEXT:   arith.constant 512 : index
// CHECK:      stream.executable.export public @mips_matmul_0 workgroups
// CHECK-NEXT:   arith.constant 12 : index
// CHECK-NEXT:   arith.constant 256 : index

// One worker: the same 2 MiB tiles for the thin products (one core streams them all; each
// tile's streams start cold, so not fewer), the GEMM cost model's own choice for five rows.
// ONE:      stream.executable.export public @mips_matmul_1 workgroups
// ONE-NEXT:   arith.constant 12 : index
// ONE-NEXT:   arith.constant 512 : index
// ONE:      stream.executable.export public @mips_matmul_0 workgroups
// ONE-NEXT:   arith.constant 12 : index
// ONE-NEXT:   arith.constant 256 : index
