// RUN: mipsc opt %s -p convert-torch-to-mips --split-input-file | filecheck %s

// Attention's heads: a view chain that moves data ([B, S, H, D] -> [B, H, S, D], a head's
// slice of a fused projection) is rebuilt from the tensor it starts at as builtin ops, so that
// lower-mips-to-call can read it by strides (strided_views.mlir there).

// Llama-style: q and k split into heads by view + transpose(1, 2); k·ᵀ stays a flag.
func.func @heads(%xq: !torch.vtensor<[1,8,8],f32>, %xk: !torch.vtensor<[1,8,8],f32>) -> !torch.vtensor<[1,2,8,8],f32> {
  %int1 = torch.constant.int 1
  %int2 = torch.constant.int 2
  %int4 = torch.constant.int 4
  %int8 = torch.constant.int 8
  %int-1 = torch.constant.int -1
  %int-2 = torch.constant.int -2
  %shape = torch.prim.ListConstruct %int1, %int8, %int2, %int4 : (!torch.int, !torch.int, !torch.int, !torch.int) -> !torch.list<int>
  %q4 = torch.aten.view %xq, %shape : !torch.vtensor<[1,8,8],f32>, !torch.list<int> -> !torch.vtensor<[1,8,2,4],f32>
  %q = torch.aten.transpose.int %q4, %int1, %int2 : !torch.vtensor<[1,8,2,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[1,2,8,4],f32>
  %k4 = torch.aten.view %xk, %shape : !torch.vtensor<[1,8,8],f32>, !torch.list<int> -> !torch.vtensor<[1,8,2,4],f32>
  %k = torch.aten.transpose.int %k4, %int1, %int2 : !torch.vtensor<[1,8,2,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[1,2,8,4],f32>
  %kt = torch.aten.transpose.int %k, %int-2, %int-1 : !torch.vtensor<[1,2,8,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[1,2,4,8],f32>
  %0 = torch.aten.matmul %q, %kt : !torch.vtensor<[1,2,8,4],f32>, !torch.vtensor<[1,2,4,8],f32> -> !torch.vtensor<[1,2,8,8],f32>
  return %0 : !torch.vtensor<[1,2,8,8],f32>
}

// CHECK-LABEL: func.func @heads(
// CHECK:         %[[XQ:.*]] = torch_c.to_builtin_tensor %xq : !torch.vtensor<[1,8,8],f32> -> tensor<1x8x8xf32>
// CHECK-NEXT:    %[[QF:.*]] = tensor.collapse_shape %[[XQ]] {{\[}}[0 : i64, 1 : i64, 2 : i64]] : tensor<1x8x8xf32> into tensor<64xf32>
// CHECK-NEXT:    %[[Q4:.*]] = tensor.expand_shape %[[QF]] {{\[}}[0 : i64, 1 : i64, 2 : i64, 3 : i64]] output_shape [1, 8, 2, 4] : tensor<64xf32> into tensor<1x8x2x4xf32>
// CHECK-NEXT:    %[[QE:.*]] = tensor.empty() : tensor<1x2x8x4xf32>
// CHECK-NEXT:    %[[Q:.*]] = linalg.transpose ins(%[[Q4]]:tensor<1x8x2x4xf32>) outs(%[[QE]]:tensor<1x2x8x4xf32>) permutation = [0, 2, 1, 3]
// CHECK-NEXT:    %[[XK:.*]] = torch_c.to_builtin_tensor %xk
// CHECK:         %[[K:.*]] = linalg.transpose ins(%{{.*}}:tensor<1x8x2x4xf32>) outs(%{{.*}}:tensor<1x2x8x4xf32>) permutation = [0, 2, 1, 3]
// CHECK:         %[[Q3:.*]] = tensor.collapse_shape %[[Q]] {{\[}}[0 : i64, 1 : i64], [2 : i64], [3 : i64]] : tensor<1x2x8x4xf32> into tensor<2x8x4xf32>
// CHECK-NEXT:    %[[K3:.*]] = tensor.collapse_shape %[[K]] {{\[}}[0 : i64, 1 : i64], [2 : i64], [3 : i64]] : tensor<1x2x8x4xf32> into tensor<2x8x4xf32>
// CHECK:         mips.batch_matmul transpose_rhs ins(%[[Q3]], %[[K3]] : tensor<2x8x4xf32>, tensor<2x8x4xf32>)

// -----

// BERT-style (nn.MultiheadAttention): a head slice picked by select.int out of a clone,
// then view + transpose(0, 1); the clone is a value (no op), the select a slice.
func.func @selected(%qkv: !torch.vtensor<[3,8,8],f32>, %v: !torch.vtensor<[2,8,4],f32>) -> !torch.vtensor<[2,4,4],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int2 = torch.constant.int 2
  %int4 = torch.constant.int 4
  %int8 = torch.constant.int 8
  %none = torch.constant.none
  %c = torch.aten.clone %qkv, %none : !torch.vtensor<[3,8,8],f32>, !torch.none -> !torch.vtensor<[3,8,8],f32>
  %s = torch.aten.select.int %c, %int0, %int1 : !torch.vtensor<[3,8,8],f32>, !torch.int, !torch.int -> !torch.vtensor<[8,8],f32>
  %shape = torch.prim.ListConstruct %int8, %int2, %int4 : (!torch.int, !torch.int, !torch.int) -> !torch.list<int>
  %h = torch.aten.view %s, %shape : !torch.vtensor<[8,8],f32>, !torch.list<int> -> !torch.vtensor<[8,2,4],f32>
  %k = torch.aten.transpose.int %h, %int0, %int1 : !torch.vtensor<[8,2,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[2,8,4],f32>
  %kt = torch.aten.transpose.int %k, %int1, %int2 : !torch.vtensor<[2,8,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[2,4,8],f32>
  %0 = torch.aten.bmm %kt, %v : !torch.vtensor<[2,4,8],f32>, !torch.vtensor<[2,8,4],f32> -> !torch.vtensor<[2,4,4],f32>
  return %0 : !torch.vtensor<[2,4,4],f32>
}

// CHECK-LABEL: func.func @selected(
// CHECK:         %[[QKV:.*]] = torch_c.to_builtin_tensor %qkv : !torch.vtensor<[3,8,8],f32> -> tensor<3x8x8xf32>
// CHECK-NEXT:    %[[S:.*]] = tensor.extract_slice %[[QKV]][1, 0, 0] [1, 8, 8] [1, 1, 1] : tensor<3x8x8xf32> to tensor<1x8x8xf32>
// CHECK-NEXT:    %[[SF:.*]] = tensor.collapse_shape %[[S]]
// CHECK-NEXT:    %[[H:.*]] = tensor.expand_shape %[[SF]] {{\[}}[0 : i64, 1 : i64, 2 : i64]] output_shape [8, 2, 4] : tensor<64xf32> into tensor<8x2x4xf32>
// CHECK-NEXT:    %[[E:.*]] = tensor.empty() : tensor<2x8x4xf32>
// CHECK-NEXT:    %[[K:.*]] = linalg.transpose ins(%[[H]]:tensor<8x2x4xf32>) outs(%[[E]]:tensor<2x8x4xf32>) permutation = [1, 0, 2]
// CHECK:         mips.batch_matmul transpose_lhs ins(%[[K]], %{{.*}} : tensor<2x8x4xf32>, tensor<2x8x4xf32>)

// -----

// A chain of reshapes alone moves nothing: the operand stays the torch value, as before.
func.func @reshape_only(%x: !torch.vtensor<[2,3,4],f32>, %w: !torch.vtensor<[4,5],f32>) -> !torch.vtensor<[6,5],f32> {
  %int6 = torch.constant.int 6
  %int4 = torch.constant.int 4
  %shape = torch.prim.ListConstruct %int6, %int4 : (!torch.int, !torch.int) -> !torch.list<int>
  %a = torch.aten.view %x, %shape : !torch.vtensor<[2,3,4],f32>, !torch.list<int> -> !torch.vtensor<[6,4],f32>
  %0 = torch.aten.mm %a, %w : !torch.vtensor<[6,4],f32>, !torch.vtensor<[4,5],f32> -> !torch.vtensor<[6,5],f32>
  return %0 : !torch.vtensor<[6,5],f32>
}

// CHECK-LABEL: func.func @reshape_only(
// CHECK:         %[[A:.*]] = torch.aten.view %x
// CHECK-NEXT:    %{{.*}} = torch_c.to_builtin_tensor %[[A]] : !torch.vtensor<[6,4],f32> -> tensor<6x4xf32>
// CHECK-NOT:     linalg.transpose
// CHECK:         mips.matmul ins(
