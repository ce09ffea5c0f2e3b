// RUN: mipsc opt %s --convert-torch-to-mips --split-input-file | filecheck %s

// Dynamic M, K and N: the init's dynamic dims are reified from the operands with tensor.dim.
func.func @dyn_mnk(%a: !torch.vtensor<[?,?],f32>, %b: !torch.vtensor<[?,?],f32>) -> !torch.vtensor<[?,?],f32> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[?,?],f32>, !torch.vtensor<[?,?],f32> -> !torch.vtensor<[?,?],f32>
  return %0 : !torch.vtensor<[?,?],f32>
}

// CHECK-LABEL: func.func @dyn_mnk(
// CHECK:         %[[LHS:.*]] = torch_c.to_builtin_tensor %{{.*}} : !torch.vtensor<[?,?],f32> -> tensor<?x?xf32>
// CHECK-NEXT:    %[[RHS:.*]] = torch_c.to_builtin_tensor %{{.*}} : !torch.vtensor<[?,?],f32> -> tensor<?x?xf32>
// CHECK-NEXT:    %[[C0:.*]] = arith.constant 0 : index
// CHECK-NEXT:    %[[M:.*]] = tensor.dim %[[LHS]], %[[C0]] : tensor<?x?xf32>
// CHECK-NEXT:    %[[C1:.*]] = arith.constant 1 : index
// CHECK-NEXT:    %[[N:.*]] = tensor.dim %[[RHS]], %[[C1]] : tensor<?x?xf32>
// CHECK-NEXT:    %[[EMPTY:.*]] = tensor.empty(%[[M]], %[[N]]) : tensor<?x?xf32>
// CHECK:         linalg.fill ins(%{{.*}} : f32) outs(%[[EMPTY]] : tensor<?x?xf32>) -> tensor<?x?xf32>
// CHECK-NEXT:    mips.matmul ins(%[[LHS]], %[[RHS]] : tensor<?x?xf32>, tensor<?x?xf32>) outs(%{{.*}} : tensor<?x?xf32>) -> tensor<?x?xf32>

// -----

// Only M is dynamic: N comes from the static rhs type, no tensor.dim for it.
func.func @dyn_m(%a: !torch.vtensor<[?,8],f16>, %b: !torch.vtensor<[8,4],f16>) -> !torch.vtensor<[?,4],f16> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[?,8],f16>, !torch.vtensor<[8,4],f16> -> !torch.vtensor<[?,4],f16>
  return %0 : !torch.vtensor<[?,4],f16>
}

// CHECK-LABEL: func.func @dyn_m(
// CHECK:         %[[LHS:.*]] = torch_c.to_builtin_tensor %{{.*}} -> tensor<?x8xf16>
// CHECK:         %[[M:.*]] = tensor.dim %[[LHS]], %{{.*}} : tensor<?x8xf16>
// CHECK-NOT:     tensor.dim
// CHECK-NEXT:    %[[EMPTY:.*]] = tensor.empty(%[[M]]) : tensor<?x4xf16>
// CHECK-NEXT:    %[[ZERO:.*]] = arith.constant 0.000000e+00 : f16
// CHECK:         mips.matmul ins({{.*}} : tensor<?x8xf16>, tensor<8x4xf16>) outs(%{{.*}} : tensor<?x4xf16>) -> tensor<?x4xf16>

// -----

// Static operands but a result torch only knows as dynamic: the product is static, then cast.
func.func @dyn_result(%a: !torch.vtensor<[2,3],bf16>, %b: !torch.vtensor<[3,5],bf16>) -> !torch.vtensor<[?,?],bf16> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[2,3],bf16>, !torch.vtensor<[3,5],bf16> -> !torch.vtensor<[?,?],bf16>
  return %0 : !torch.vtensor<[?,?],bf16>
}

// CHECK-LABEL: func.func @dyn_result(
// CHECK:         tensor.empty() : tensor<2x5xbf16>
// CHECK:         %[[MM:.*]] = mips.matmul ins({{.*}} : tensor<2x3xbf16>, tensor<3x5xbf16>) outs(%{{.*}} : tensor<2x5xbf16>) -> tensor<2x5xbf16>
// CHECK-NEXT:    %[[CAST:.*]] = tensor.cast %[[MM]] : tensor<2x5xbf16> to tensor<?x?xbf16>
// CHECK-NEXT:    torch_c.from_builtin_tensor %[[CAST]] : tensor<?x?xbf16> -> !torch.vtensor<[?,?],bf16>
