// From tests/filecheck/lower-mips-to-call.
func.func @mm(%a: tensor<37x19xf32>, %b: tensor<19x23xf32>) -> tensor<37x23xf32> {
  %e = tensor.empty() : tensor<37x23xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<37x23xf32>) -> tensor<37x23xf32>
  %r = mips.matmul ins(%a, %b : tensor<37x19xf32>, tensor<19x23xf32>) outs(%f : tensor<37x23xf32>) -> tensor<37x23xf32>
  return %r : tensor<37x23xf32>
}

func.func @acc(%a: tensor<4x5xbf16>, %b: tensor<5x3xbf16>, %c: tensor<4x3xbf16>) -> tensor<4x3xbf16> {
  %r = mips.matmul ins(%a, %b : tensor<4x5xbf16>, tensor<5x3xbf16>) outs(%c : tensor<4x3xbf16>) -> tensor<4x3xbf16>
  return %r : tensor<4x3xbf16>
}
