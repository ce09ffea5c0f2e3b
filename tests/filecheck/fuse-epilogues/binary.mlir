// RUN: mipsc opt %s -p convert-torch-to-mips,fuse-epilogues --split-input-file | filecheck %s

// A residual add after a linear over [B, S, K] (through a clone, as nn.TransformerEncoderLayer
// exports it): the residual is folded like the product ([2, 3, 8] -> [6, 8]) and the fused
// product takes the add's place.
func.func @residual(%x: !torch.vtensor<[2,3,16],f32>, %w: !torch.vtensor<[8,16],f32>, %b: !torch.vtensor<[8],f32>, %r: !torch.vtensor<[2,3,8],f32>) -> !torch.vtensor<[2,3,8],f32> {
  %none = torch.constant.none
  %int1 = torch.constant.int 1
  %0 = torch.aten.linear %x, %w, %b : !torch.vtensor<[2,3,16],f32>, !torch.vtensor<[8,16],f32>, !torch.vtensor<[8],f32> -> !torch.vtensor<[2,3,8],f32>
  %1 = torch.aten.clone %0, %none : !torch.vtensor<[2,3,8],f32>, !torch.none -> !torch.vtensor<[2,3,8],f32>
  %2 = torch.aten.add.Tensor %r, %1, %int1 : !torch.vtensor<[2,3,8],f32>, !torch.vtensor<[2,3,8],f32>, !torch.int -> !torch.vtensor<[2,3,8],f32>
  return %2 : !torch.vtensor<[2,3,8],f32>
}
// CHECK-LABEL: func.func @residual(
// CHECK:         %[[R:.*]] = torch_c.to_builtin_tensor %r : !torch.vtensor<[2,3,8],f32> -> tensor<2x3x8xf32>
// CHECK-NEXT:    %[[RF:.*]] = tensor.collapse_shape %[[R]] {{\[\[}}0 : i64, 1 : i64], [2 : i64]] : tensor<2x3x8xf32> into tensor<6x8xf32>
// CHECK-NEXT:    %[[MM:.*]] = mips.matmul transpose_rhs ins({{.*}}) outs({{.*}} : tensor<6x8xf32>) binary(add, %[[RF]] : tensor<6x8xf32>) -> tensor<6x8xf32>
// CHECK-NEXT:    %[[E:.*]] = tensor.expand_shape %[[MM]] {{\[\[}}0 : i64, 1 : i64], [2 : i64]] output_shape [2, 3, 8] : tensor<6x8xf32> into tensor<2x3x8xf32>
// CHECK-NEXT:    %[[T:.*]] = torch_c.from_builtin_tensor %[[E]] : tensor<2x3x8xf32> -> !torch.vtensor<[2,3,8],f32>
// CHECK-NEXT:    func.return %[[T]]
// CHECK-NOT:     torch.aten.add.Tensor
// CHECK-NOT:     torch.aten.clone

// -----

// The SiLU-gated product of two projections (a Llama MLP): the gate's product takes SiLU,
// then the product with the other projection; it is built where the mul was, after `up`.
func.func @gated(%x: !torch.vtensor<[4,16],bf16>, %w1: !torch.vtensor<[32,16],bf16>, %w2: !torch.vtensor<[32,16],bf16>) -> !torch.vtensor<[4,32],bf16> {
  %none = torch.constant.none
  %gate = torch.aten.linear %x, %w1, %none : !torch.vtensor<[4,16],bf16>, !torch.vtensor<[32,16],bf16>, !torch.none -> !torch.vtensor<[4,32],bf16>
  %act = torch.aten.silu %gate : !torch.vtensor<[4,32],bf16> -> !torch.vtensor<[4,32],bf16>
  %up = torch.aten.linear %x, %w2, %none : !torch.vtensor<[4,16],bf16>, !torch.vtensor<[32,16],bf16>, !torch.none -> !torch.vtensor<[4,32],bf16>
  %0 = torch.aten.mul.Tensor %act, %up : !torch.vtensor<[4,32],bf16>, !torch.vtensor<[4,32],bf16> -> !torch.vtensor<[4,32],bf16>
  return %0 : !torch.vtensor<[4,32],bf16>
}
// CHECK-LABEL: func.func @gated(
// CHECK:         %[[UP:.*]] = mips.matmul transpose_rhs ins({{.*}}) outs({{.*}}) -> tensor<4x32xbf16>
// CHECK-NEXT:    %[[UPT:.*]] = torch_c.from_builtin_tensor %[[UP]]
// CHECK-NEXT:    %[[UPB:.*]] = torch_c.to_builtin_tensor %[[UPT]]
// CHECK-NEXT:    mips.matmul transpose_rhs ins({{.*}}) outs({{.*}}) activation(silu) binary(mul, %[[UPB]] : tensor<4x32xbf16>) -> tensor<4x32xbf16>
// CHECK-NOT:     torch.aten.silu
// CHECK-NOT:     torch.aten.mul.Tensor

// -----

// Not fused: an add with alpha 2, and an add that broadcasts (a row, not a tensor of C's type).
func.func @not_fused(%x: !torch.vtensor<[4,16],f32>, %w: !torch.vtensor<[16,8],f32>, %r: !torch.vtensor<[4,8],f32>, %row: !torch.vtensor<[8],f32>) -> (!torch.vtensor<[4,8],f32>, !torch.vtensor<[4,8],f32>) {
  %int2 = torch.constant.int 2
  %int1 = torch.constant.int 1
  %0 = torch.aten.mm %x, %w : !torch.vtensor<[4,16],f32>, !torch.vtensor<[16,8],f32> -> !torch.vtensor<[4,8],f32>
  %1 = torch.aten.add.Tensor %r, %0, %int2 : !torch.vtensor<[4,8],f32>, !torch.vtensor<[4,8],f32>, !torch.int -> !torch.vtensor<[4,8],f32>
  %2 = torch.aten.mm %x, %w : !torch.vtensor<[4,16],f32>, !torch.vtensor<[16,8],f32> -> !torch.vtensor<[4,8],f32>
  %3 = torch.aten.add.Tensor %2, %row, %int1 : !torch.vtensor<[4,8],f32>, !torch.vtensor<[8],f32>, !torch.int -> !torch.vtensor<[4,8],f32>
  return %1, %3 : !torch.vtensor<[4,8],f32>, !torch.vtensor<[4,8],f32>
}
// CHECK-LABEL: func.func @not_fused(
// CHECK-NOT:     binary(
// CHECK:         torch.aten.add.Tensor
// CHECK:         torch.aten.add.Tensor

// -----

// Activation then residual: both steps, in torch's order.
func.func @relu_then_add(%x: !torch.vtensor<[4,16],f32>, %w: !torch.vtensor<[16,8],f32>, %r: !torch.vtensor<[4,8],f32>) -> !torch.vtensor<[4,8],f32> {
  %int1 = torch.constant.int 1
  %0 = torch.aten.mm %x, %w : !torch.vtensor<[4,16],f32>, !torch.vtensor<[16,8],f32> -> !torch.vtensor<[4,8],f32>
  %1 = torch.aten.relu %0 : !torch.vtensor<[4,8],f32> -> !torch.vtensor<[4,8],f32>
  %2 = torch.aten.add.Tensor %1, %r, %int1 : !torch.vtensor<[4,8],f32>, !torch.vtensor<[4,8],f32>, !torch.int -> !torch.vtensor<[4,8],f32>
  return %2 : !torch.vtensor<[4,8],f32>
}
// CHECK-LABEL: func.func @relu_then_add(
// CHECK:         mips.matmul ins({{.*}}) outs({{.*}}) activation(relu) binary(add, %{{.*}} : tensor<4x8xf32>) -> tensor<4x8xf32>

// -----

// A dynamic dim: the residual's own size is checked at run time against the product's
// (`cf.assert`), so the epilogue never reads past it.
func.func @dynamic(%x: !torch.vtensor<[?,16],f32>, %w: !torch.vtensor<[16,8],f32>, %r: !torch.vtensor<[?,8],f32>) -> !torch.vtensor<[?,8],f32> {
  %int1 = torch.constant.int 1
  %0 = torch.aten.mm %x, %w : !torch.vtensor<[?,16],f32>, !torch.vtensor<[16,8],f32> -> !torch.vtensor<[?,8],f32>
  %1 = torch.aten.add.Tensor %0, %r, %int1 : !torch.vtensor<[?,8],f32>, !torch.vtensor<[?,8],f32>, !torch.int -> !torch.vtensor<[?,8],f32>
  return %1 : !torch.vtensor<[?,8],f32>
}
// CHECK-LABEL: func.func @dynamic(
// CHECK:         %[[R:.*]] = torch_c.to_builtin_tensor %r : !torch.vtensor<[?,8],f32> -> tensor<?x8xf32>
// CHECK:         %[[M:.*]] = tensor.dim %{{.*}}, %{{.*}} : tensor<?x16xf32>
// CHECK:         %[[RM:.*]] = tensor.dim %[[R]], %{{.*}} : tensor<?x8xf32>
// CHECK-NEXT:    %[[SAME:.*]] = arith.cmpi eq, %[[RM]], %[[M]] : index
// CHECK-NEXT:    cf.assert %[[SAME]]
// CHECK-NEXT:    mips.matmul ins({{.*}}) outs({{.*}}) binary(add, %[[R]] : tensor<?x8xf32>) -> tensor<?x8xf32>
