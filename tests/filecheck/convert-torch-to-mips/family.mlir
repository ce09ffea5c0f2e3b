// RUN: mipsc opt %s --convert-torch-to-mips --split-input-file | filecheck %s

// linear: the [N, K] weight is read transposed by strides (no transpose op), the bias is the
// init the kernel accumulates into, and the leading dims of x fold into M for free.
func.func @linear(%x: !torch.vtensor<[2,3,16],f32>, %w: !torch.vtensor<[10,16],f32>, %b: !torch.vtensor<[10],f32>) -> !torch.vtensor<[2,3,10],f32> {
  %0 = torch.aten.linear %x, %w, %b : !torch.vtensor<[2,3,16],f32>, !torch.vtensor<[10,16],f32>, !torch.vtensor<[10],f32> -> !torch.vtensor<[2,3,10],f32>
  return %0 : !torch.vtensor<[2,3,10],f32>
}
// CHECK-LABEL: func.func @linear(
// CHECK-NOT:     torch.aten
// CHECK:         %[[X:.*]] = torch_c.to_builtin_tensor %x : !torch.vtensor<[2,3,16],f32> -> tensor<2x3x16xf32>
// CHECK-NEXT:    %[[W:.*]] = torch_c.to_builtin_tensor %w : !torch.vtensor<[10,16],f32> -> tensor<10x16xf32>
// CHECK-NEXT:    %[[B:.*]] = torch_c.to_builtin_tensor %b : !torch.vtensor<[10],f32> -> tensor<10xf32>
// CHECK-NEXT:    %[[E:.*]] = tensor.empty() : tensor<2x3x10xf32>
// CHECK-NEXT:    %[[BIAS:.*]] = linalg.broadcast ins(%[[B]]:tensor<10xf32>) outs(%[[E]]:tensor<2x3x10xf32>) dimensions = [0, 1]
// CHECK-NEXT:    %[[X2:.*]] = tensor.collapse_shape %[[X]] {{\[\[}}0 : i64, 1 : i64], [2 : i64]] : tensor<2x3x16xf32> into tensor<6x16xf32>
// CHECK-NEXT:    %[[I2:.*]] = tensor.collapse_shape %[[BIAS]] {{\[\[}}0 : i64, 1 : i64], [2 : i64]] : tensor<2x3x10xf32> into tensor<6x10xf32>
// CHECK-NEXT:    %[[MM:.*]] = mips.matmul transpose_rhs ins(%[[X2]], %[[W]] : tensor<6x16xf32>, tensor<10x16xf32>) outs(%[[I2]] : tensor<6x10xf32>) -> tensor<6x10xf32>
// CHECK-NEXT:    %[[R:.*]] = tensor.expand_shape %[[MM]] {{\[\[}}0 : i64, 1 : i64], [2 : i64]] output_shape [2, 3, 10] : tensor<6x10xf32> into tensor<2x3x10xf32>
// CHECK-NEXT:    torch_c.from_builtin_tensor %[[R]] : tensor<2x3x10xf32> -> !torch.vtensor<[2,3,10],f32>

// -----

// Attention scores: q @ k.transpose(-2, -1) is one batch_matmul reading k by strides; the
// transpose does not survive in front of it.
func.func @scores(%q: !torch.vtensor<[2,8,16],f32>, %k: !torch.vtensor<[2,8,16],f32>) -> !torch.vtensor<[2,8,8],f32> {
  %int-2 = torch.constant.int -2
  %int-1 = torch.constant.int -1
  %kt = torch.aten.transpose.int %k, %int-2, %int-1 : !torch.vtensor<[2,8,16],f32>, !torch.int, !torch.int -> !torch.vtensor<[2,16,8],f32>
  %0 = torch.aten.matmul %q, %kt : !torch.vtensor<[2,8,16],f32>, !torch.vtensor<[2,16,8],f32> -> !torch.vtensor<[2,8,8],f32>
  return %0 : !torch.vtensor<[2,8,8],f32>
}
// CHECK-LABEL: func.func @scores(
// CHECK-NOT:     torch.aten.transpose.int
// CHECK:         %[[K:.*]] = torch_c.to_builtin_tensor %k : !torch.vtensor<[2,8,16],f32> -> tensor<2x8x16xf32>
// CHECK:         mips.batch_matmul transpose_rhs ins(%{{.*}}, %[[K]] : tensor<2x8x16xf32>, tensor<2x8x16xf32>) outs(%{{.*}} : tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
// CHECK-NOT:     torch.aten.transpose.int

// -----

// aten.t and permute of the last two dims fold the same way; a transposed lhs too.
func.func @t_and_permute(%a: !torch.vtensor<[7,6],f32>, %b: !torch.vtensor<[5,7],f32>) -> !torch.vtensor<[6,5],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %at = torch.aten.t %a : !torch.vtensor<[7,6],f32> -> !torch.vtensor<[6,7],f32>
  %perm = torch.prim.ListConstruct %int1, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %bt = torch.aten.permute %b, %perm : !torch.vtensor<[5,7],f32>, !torch.list<int> -> !torch.vtensor<[7,5],f32>
  %0 = torch.aten.mm %at, %bt : !torch.vtensor<[6,7],f32>, !torch.vtensor<[7,5],f32> -> !torch.vtensor<[6,5],f32>
  return %0 : !torch.vtensor<[6,5],f32>
}
// CHECK-LABEL: func.func @t_and_permute(
// CHECK-NOT:     torch.aten.t
// CHECK-NOT:     torch.aten.permute
// CHECK:         mips.matmul transpose_lhs transpose_rhs ins(%{{.*}}, %{{.*}} : tensor<7x6xf32>, tensor<5x7xf32>) outs(%{{.*}} : tensor<6x5xf32>) -> tensor<6x5xf32>

// -----

// A transpose with another user stays for that user; the matmul still reads by strides.
func.func @shared_transpose(%a: !torch.vtensor<[6,7],f32>, %b: !torch.vtensor<[5,7],f32>) -> (!torch.vtensor<[6,5],f32>, !torch.vtensor<[7,5],f32>) {
  %bt = torch.aten.t %b : !torch.vtensor<[5,7],f32> -> !torch.vtensor<[7,5],f32>
  %0 = torch.aten.mm %a, %bt : !torch.vtensor<[6,7],f32>, !torch.vtensor<[7,5],f32> -> !torch.vtensor<[6,5],f32>
  return %0, %bt : !torch.vtensor<[6,5],f32>, !torch.vtensor<[7,5],f32>
}
// CHECK-LABEL: func.func @shared_transpose(
// CHECK:         %[[BT:.*]] = torch.aten.t %b
// CHECK:         mips.matmul transpose_rhs ins(%{{.*}}, %{{.*}} : tensor<6x7xf32>, tensor<5x7xf32>)
// CHECK:         func.return %{{.*}}, %[[BT]]

// -----

// Vectors become unit dims and go again; a dot product is a 1x1 matmul.
func.func @dot(%a: !torch.vtensor<[7],f32>, %b: !torch.vtensor<[7],f32>) -> !torch.vtensor<[],f32> {
  %0 = torch.aten.matmul %a, %b : !torch.vtensor<[7],f32>, !torch.vtensor<[7],f32> -> !torch.vtensor<[],f32>
  return %0 : !torch.vtensor<[],f32>
}
// CHECK-LABEL: func.func @dot(
// CHECK:         tensor.expand_shape %{{.*}} {{\[\[}}0 : i64, 1 : i64]] output_shape [1, 7] : tensor<7xf32> into tensor<1x7xf32>
// CHECK:         tensor.expand_shape %{{.*}} {{\[\[}}0 : i64, 1 : i64]] output_shape [7, 1] : tensor<7xf32> into tensor<7x1xf32>
// CHECK:         mips.matmul ins({{.*}} : tensor<1x7xf32>, tensor<7x1xf32>) outs({{.*}} : tensor<1x1xf32>) -> tensor<1x1xf32>
// CHECK:         tensor.collapse_shape %{{.*}} [] : tensor<1x1xf32> into tensor<f32>

// -----

// Batch dims broadcast: the operand that lacks them is repeated (a copy), then one dispatch.
func.func @broadcast(%a: !torch.vtensor<[6,7],f32>, %b: !torch.vtensor<[3,7,5],f32>) -> !torch.vtensor<[3,6,5],f32> {
  %0 = torch.aten.matmul %a, %b : !torch.vtensor<[6,7],f32>, !torch.vtensor<[3,7,5],f32> -> !torch.vtensor<[3,6,5],f32>
  return %0 : !torch.vtensor<[3,6,5],f32>
}
// CHECK-LABEL: func.func @broadcast(
// CHECK:         linalg.broadcast ins(%{{.*}}:tensor<6x7xf32>) outs(%{{.*}}:tensor<3x6x7xf32>) dimensions = [0]
// CHECK:         mips.batch_matmul ins({{.*}} : tensor<3x6x7xf32>, tensor<3x7x5xf32>) outs({{.*}} : tensor<3x6x5xf32>) -> tensor<3x6x5xf32>

// -----

// addmm with alpha = 1: beta·input is the init; with another alpha torch's add.Tensor stays.
func.func @addmm(%c: !torch.vtensor<[5],f32>, %a: !torch.vtensor<[4,3],f32>, %b: !torch.vtensor<[3,5],f32>) -> (!torch.vtensor<[4,5],f32>, !torch.vtensor<[4,5],f32>) {
  %int1 = torch.constant.int 1
  %beta = torch.constant.float 5.000000e-01
  %alpha = torch.constant.float 2.000000e+00
  %0 = torch.aten.addmm %c, %a, %b, %beta, %int1 : !torch.vtensor<[5],f32>, !torch.vtensor<[4,3],f32>, !torch.vtensor<[3,5],f32>, !torch.float, !torch.int -> !torch.vtensor<[4,5],f32>
  %1 = torch.aten.addmm %c, %a, %b, %int1, %alpha : !torch.vtensor<[5],f32>, !torch.vtensor<[4,3],f32>, !torch.vtensor<[3,5],f32>, !torch.int, !torch.float -> !torch.vtensor<[4,5],f32>
  return %0, %1 : !torch.vtensor<[4,5],f32>, !torch.vtensor<[4,5],f32>
}
// CHECK-LABEL: func.func @addmm(
// CHECK:         %[[S:.*]] = torch.aten.mul.Scalar %c, %beta : !torch.vtensor<[5],f32>, !torch.float -> !torch.vtensor<[5],f32>
// CHECK:         %[[SB:.*]] = torch_c.to_builtin_tensor %[[S]]
// CHECK:         %[[INIT:.*]] = linalg.broadcast ins(%[[SB]]:tensor<5xf32>) outs(%{{.*}}:tensor<4x5xf32>) dimensions = [0]
// CHECK-NEXT:    mips.matmul ins({{.*}}) outs(%[[INIT]] : tensor<4x5xf32>) -> tensor<4x5xf32>
// CHECK-NOT:     torch.aten.addmm
// CHECK:         %[[P:.*]] = mips.matmul ins({{.*}}) outs(%{{.*}} : tensor<4x5xf32>) -> tensor<4x5xf32>
// CHECK-NEXT:    %[[PT:.*]] = torch_c.from_builtin_tensor %[[P]]
// CHECK-NEXT:    torch.aten.add.Tensor %c, %[[PT]], %alpha : !torch.vtensor<[5],f32>, !torch.vtensor<[4,5],f32>, !torch.float -> !torch.vtensor<[4,5],f32>
