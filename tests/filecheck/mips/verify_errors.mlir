// RUN: not mipsc opt %s --split-input-file 2>&1 | filecheck %s

func.func @k_mismatch(%a: tensor<4x5xf32>, %b: tensor<6x3xf32>, %c: tensor<4x3xf32>) -> tensor<4x3xf32> {
  %0 = mips.matmul ins(%a, %b : tensor<4x5xf32>, tensor<6x3xf32>) outs(%c : tensor<4x3xf32>) -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}
// CHECK: verify_errors.mlir:4:3: error: 'mips.matmul' op K mismatch: lhs dim 1 is 5 but rhs dim 0 is 6 (lhs 4x5, rhs 6x3, init 4x3)
// CHECK-NEXT: %0 = mips.matmul ins(%a, %b
// CHECK-NEXT: ^

// -----

func.func @m_mismatch(%a: tensor<4x5xf32>, %b: tensor<5x3xf32>, %c: tensor<7x3xf32>) -> tensor<7x3xf32> {
  %0 = mips.matmul ins(%a, %b : tensor<4x5xf32>, tensor<5x3xf32>) outs(%c : tensor<7x3xf32>) -> tensor<7x3xf32>
  return %0 : tensor<7x3xf32>
}
// CHECK: verify_errors.mlir:14:3: error: 'mips.matmul' op M mismatch: lhs dim 0 is 4 but init dim 0 is 7

// -----

func.func @n_mismatch(%a: tensor<?x5xf32>, %b: tensor<5x3xf32>, %c: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %0 = mips.matmul ins(%a, %b : tensor<?x5xf32>, tensor<5x3xf32>) outs(%c : tensor<?x2xf32>) -> tensor<?x2xf32>
  return %0 : tensor<?x2xf32>
}
// CHECK: verify_errors.mlir:22:3: error: 'mips.matmul' op N mismatch: rhs dim 1 is 3 but init dim 1 is 2 (lhs ?x5, rhs 5x3, init ?x2)

// -----

// A `?` agrees with anything: this one verifies and is printed back.
func.func @dynamic_ok(%a: tensor<?x?xf32>, %b: tensor<5x3xf32>, %c: tensor<4x?xf32>) -> tensor<4x?xf32> {
  %0 = mips.matmul ins(%a, %b : tensor<?x?xf32>, tensor<5x3xf32>) outs(%c : tensor<4x?xf32>) -> tensor<4x?xf32>
  return %0 : tensor<4x?xf32>
}
// CHECK: func.func @dynamic_ok
// CHECK-NEXT: mips.matmul ins(%{{.*}}, %{{.*}} : tensor<?x?xf32>, tensor<5x3xf32>) outs(%{{.*}} : tensor<4x?xf32>) -> tensor<4x?xf32>

// -----

func.func @elt_mismatch(%a: tensor<4x5xf16>, %b: tensor<5x3xf32>, %c: tensor<4x3xf32>) -> tensor<4x3xf32> {
  %0 = mips.matmul ins(%a, %b : tensor<4x5xf16>, tensor<5x3xf32>) outs(%c : tensor<4x3xf32>) -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}
// CHECK: verify_errors.mlir:40:3: error: 'mips.matmul' op operands and result must share one element type, got lhs f16, rhs f32, init f32, result f32

// -----

func.func @rank(%a: tensor<2x4x5xf32>, %b: tensor<5x3xf32>, %c: tensor<4x3xf32>) -> tensor<4x3xf32> {
  %0 = mips.matmul ins(%a, %b : tensor<2x4x5xf32>, tensor<5x3xf32>) outs(%c : tensor<4x3xf32>) -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}
// CHECK: verify_errors.mlir:48:3: error: 'mips.matmul' op lhs must be a 2-D tensor, got tensor<2x4x5xf32>

// -----

func.func @result_type(%a: tensor<4x5xf32>, %b: tensor<5x3xf32>, %c: tensor<4x3xf32>) -> tensor<?x3xf32> {
  %0 = mips.matmul ins(%a, %b : tensor<4x5xf32>, tensor<5x3xf32>) outs(%c : tensor<4x3xf32>) -> tensor<?x3xf32>
  return %0 : tensor<?x3xf32>
}
// CHECK: verify_errors.mlir:56:3: error: 'mips.matmul' op result type tensor<?x3xf32> must equal the init type tensor<4x3xf32>

// -----

// The verifier also guards the conversion's input: a torch mm with mismatched K.
func.func @torch_k_mismatch(%a: !torch.vtensor<[4,5],f32>, %b: !torch.vtensor<[6,3],f32>) -> !torch.vtensor<[4,3],f32> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[4,5],f32>, !torch.vtensor<[6,3],f32> -> !torch.vtensor<[4,3],f32>
  return %0 : !torch.vtensor<[4,3],f32>
}
// CHECK: verify_errors.mlir:65:3: error: 'torch.aten.mm' op K mismatch: self dim 1 is 5 but mat2 dim 0 is 6

// -----

// An epilogue's second tensor must have the result's type (no broadcast).
func.func @epilogue_other(%a: tensor<4x5xf32>, %b: tensor<5x3xf32>, %c: tensor<4x3xf32>, %r: tensor<3xf32>) -> tensor<4x3xf32> {
  %0 = mips.matmul ins(%a, %b : tensor<4x5xf32>, tensor<5x3xf32>) outs(%c : tensor<4x3xf32>) activation(silu) binary(mul, %r : tensor<3xf32>) -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}
// CHECK: verify_errors.mlir:74:3: error: 'mips.matmul' op the epilogue's other tensor tensor<3xf32> must have the result type tensor<4x3xf32>

// -----

func.func @epilogue_kind(%a: tensor<4x5xf32>, %b: tensor<5x3xf32>, %c: tensor<4x3xf32>) -> tensor<4x3xf32> {
  %0 = mips.matmul ins(%a, %b : tensor<4x5xf32>, tensor<5x3xf32>) outs(%c : tensor<4x3xf32>) activation(tanh) -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}
// CHECK: verify_errors.mlir:82:{{.*}}error:{{.*}}tanh
