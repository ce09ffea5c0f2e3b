// RUN: mipsc opt %s --convert-torch-to-mips | filecheck %s
// RUN: mipsc opt %s -p convert-torch-to-mips | filecheck %s

// A static mm becomes casts, a zero-filled init and mips.matmul; its user is untouched.
func.func @main(%a: !torch.vtensor<[37,19],f32>, %b: !torch.vtensor<[19,23],f32>) -> !torch.vtensor<[37,23],f32> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[37,19],f32>, !torch.vtensor<[19,23],f32> -> !torch.vtensor<[37,23],f32>
  %1 = torch.aten.relu %0 : !torch.vtensor<[37,23],f32> -> !torch.vtensor<[37,23],f32>
  return %1 : !torch.vtensor<[37,23],f32>
}

// CHECK-LABEL: func.func @main(
// CHECK-SAME:      %[[A:.*]]: !torch.vtensor<[37,19],f32>, %[[B:.*]]: !torch.vtensor<[19,23],f32>)
// CHECK-NOT:     torch.aten.mm
// CHECK:         %[[LHS:.*]] = torch_c.to_builtin_tensor %[[A]] : !torch.vtensor<[37,19],f32> -> tensor<37x19xf32>
// CHECK-NEXT:    %[[RHS:.*]] = torch_c.to_builtin_tensor %[[B]] : !torch.vtensor<[19,23],f32> -> tensor<19x23xf32>
// CHECK-NEXT:    %[[EMPTY:.*]] = tensor.empty() : tensor<37x23xf32>
// CHECK-NEXT:    %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:    %[[INIT:.*]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[EMPTY]] : tensor<37x23xf32>) -> tensor<37x23xf32>
// CHECK-NEXT:    %[[MM:.*]] = mips.matmul ins(%[[LHS]], %[[RHS]] : tensor<37x19xf32>, tensor<19x23xf32>) outs(%[[INIT]] : tensor<37x23xf32>) -> tensor<37x23xf32>
// CHECK-NEXT:    %[[RES:.*]] = torch_c.from_builtin_tensor %[[MM]] : tensor<37x23xf32> -> !torch.vtensor<[37,23],f32>
// CHECK-NEXT:    %[[RELU:.*]] = torch.aten.relu %[[RES]] : !torch.vtensor<[37,23],f32> -> !torch.vtensor<[37,23],f32>
// CHECK-NEXT:    func.return %[[RELU]] : !torch.vtensor<[37,23],f32>
