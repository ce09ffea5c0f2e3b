// RUN: mipsc opt %s -p convert-torch-to-mips,fuse-epilogues --split-input-file | filecheck %s

// ReLU after a linear: the activation moves onto the product; the bias stays its init.
func.func @relu(%x: !torch.vtensor<[4,16],f32>, %w: !torch.vtensor<[8,16],f32>, %b: !torch.vtensor<[8],f32>) -> !torch.vtensor<[4,8],f32> {
  %0 = torch.aten.linear %x, %w, %b : !torch.vtensor<[4,16],f32>, !torch.vtensor<[8,16],f32>, !torch.vtensor<[8],f32> -> !torch.vtensor<[4,8],f32>
  %1 = torch.aten.relu %0 : !torch.vtensor<[4,8],f32> -> !torch.vtensor<[4,8],f32>
  return %1 : !torch.vtensor<[4,8],f32>
}
// CHECK-LABEL: func.func @relu(
// CHECK:         %[[BIAS:.*]] = linalg.broadcast
// CHECK-NEXT:    %[[MM:.*]] = mips.matmul transpose_rhs ins(%{{.*}}, %{{.*}} : tensor<4x16xf32>, tensor<8x16xf32>) outs(%[[BIAS]] : tensor<4x8xf32>) activation(relu) -> tensor<4x8xf32>
// CHECK-NEXT:    %[[R:.*]] = torch_c.from_builtin_tensor %[[MM]] : tensor<4x8xf32> -> !torch.vtensor<[4,8],f32>
// CHECK-NEXT:    func.return %[[R]]
// CHECK-NOT:     torch.aten.relu

// -----

// GELU, exact (erf) and tanh-approximated: each is its own activation.
func.func @gelu(%x: !torch.vtensor<[4,16],bf16>, %w: !torch.vtensor<[8,16],bf16>) -> (!torch.vtensor<[4,8],bf16>, !torch.vtensor<[4,8],bf16>) {
  %none = torch.constant.none
  %exact = torch.constant.str "none"
  %tanh = torch.constant.str "tanh"
  %0 = torch.aten.linear %x, %w, %none : !torch.vtensor<[4,16],bf16>, !torch.vtensor<[8,16],bf16>, !torch.none -> !torch.vtensor<[4,8],bf16>
  %1 = torch.aten.gelu %0, %exact : !torch.vtensor<[4,8],bf16>, !torch.str -> !torch.vtensor<[4,8],bf16>
  %2 = torch.aten.linear %x, %w, %none : !torch.vtensor<[4,16],bf16>, !torch.vtensor<[8,16],bf16>, !torch.none -> !torch.vtensor<[4,8],bf16>
  %3 = torch.aten.gelu %2, %tanh : !torch.vtensor<[4,8],bf16>, !torch.str -> !torch.vtensor<[4,8],bf16>
  return %1, %3 : !torch.vtensor<[4,8],bf16>, !torch.vtensor<[4,8],bf16>
}
// CHECK-LABEL: func.func @gelu(
// CHECK:         mips.matmul transpose_rhs {{.*}} activation(gelu) -> tensor<4x8xbf16>
// CHECK:         mips.matmul transpose_rhs {{.*}} activation(gelu_tanh) -> tensor<4x8xbf16>
// CHECK-NOT:     torch.aten.gelu

// -----

// An activation that is not known (a GELU whose approximation is not a constant) stays.
func.func @unknown_gelu(%x: !torch.vtensor<[4,16],f32>, %w: !torch.vtensor<[16,8],f32>, %approx: !torch.str) -> !torch.vtensor<[4,8],f32> {
  %0 = torch.aten.mm %x, %w : !torch.vtensor<[4,16],f32>, !torch.vtensor<[16,8],f32> -> !torch.vtensor<[4,8],f32>
  %1 = torch.aten.gelu %0, %approx : !torch.vtensor<[4,8],f32>, !torch.str -> !torch.vtensor<[4,8],f32>
  return %1 : !torch.vtensor<[4,8],f32>
}
// CHECK-LABEL: func.func @unknown_gelu(
// CHECK:         mips.matmul ins({{.*}}) outs({{.*}}) -> tensor<4x8xf32>
// CHECK:         torch.aten.gelu

// -----

// The pre-activation output is used elsewhere: nothing is fused away.
func.func @used_twice(%x: !torch.vtensor<[4,16],f32>, %w: !torch.vtensor<[16,8],f32>) -> (!torch.vtensor<[4,8],f32>, !torch.vtensor<[4,8],f32>) {
  %0 = torch.aten.mm %x, %w : !torch.vtensor<[4,16],f32>, !torch.vtensor<[16,8],f32> -> !torch.vtensor<[4,8],f32>
  %1 = torch.aten.silu %0 : !torch.vtensor<[4,8],f32> -> !torch.vtensor<[4,8],f32>
  return %0, %1 : !torch.vtensor<[4,8],f32>, !torch.vtensor<[4,8],f32>
}
// CHECK-LABEL: func.func @used_twice(
// CHECK:         mips.matmul ins({{.*}}) outs({{.*}}) -> tensor<4x8xf32>
// CHECK:         torch.aten.silu
