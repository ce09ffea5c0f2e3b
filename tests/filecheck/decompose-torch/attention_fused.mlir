// RUN: mipsc opt %s -p decompose-torch --remarks 2>&1 | filecheck %s

// With fuse-attention (the default), static forms become one mips.attention between torch_c
// casts; the others are decomposed, and the remark says why they were not fused.
// CHECK-DAG: attention_fused.mlir:14:3: remark: [decompose-torch] torch.aten.scaled_dot_product_attention -> mips.attention (fused)
// CHECK-DAG: attention_fused.mlir:30:3: remark: [decompose-torch] torch.aten.scaled_dot_product_attention -> mips.attention (fused) (causal, masked, 2 query heads per key/value head)
// CHECK-DAG: attention_fused.mlir:45:3: remark: [decompose-torch] torch.aten.scaled_dot_product_attention -> q·kᵀ and ·v in the kernel, torch's softmax between (causal) (not fused: dynamic shapes)

// Plain: the default scale 1/sqrt(16) is the op's.
func.func @plain(%q: !torch.vtensor<[2,8,16],f32>, %k: !torch.vtensor<[2,10,16],f32>, %v: !torch.vtensor<[2,10,12],f32>) -> !torch.vtensor<[2,8,12],f32> {
  %none = torch.constant.none
  %zero = torch.constant.float 0.000000e+00
  %false = torch.constant.bool false
  %r = torch.aten.scaled_dot_product_attention %q, %k, %v, %none, %zero, %false, %none, %false : !torch.vtensor<[2,8,16],f32>, !torch.vtensor<[2,10,16],f32>, !torch.vtensor<[2,10,12],f32>, !torch.none, !torch.float, !torch.bool, !torch.none, !torch.bool -> !torch.vtensor<[2,8,12],f32>
  return %r : !torch.vtensor<[2,8,12],f32>
}
// CHECK-LABEL: func.func @plain(
// CHECK:       %[[Q:.*]] = torch_c.to_builtin_tensor %q : !torch.vtensor<[2,8,16],f32> -> tensor<2x8x16xf32>
// CHECK-NEXT:  %[[K:.*]] = torch_c.to_builtin_tensor %k
// CHECK-NEXT:  %[[V:.*]] = torch_c.to_builtin_tensor %v
// CHECK-NEXT:  %[[O:.*]] = mips.attention %[[Q]], %[[K]], %[[V]] scale(2.500000e-01 : f64) : tensor<2x8x16xf32>, tensor<2x10x16xf32>, tensor<2x10x12xf32> -> tensor<2x8x12xf32>
// CHECK-NEXT:  %r = torch_c.from_builtin_tensor %[[O]] : tensor<2x8x12xf32> -> !torch.vtensor<[2,8,12],f32>

// Causal, grouped heads, a boolean mask: the mask becomes additive (0 where true, -inf where
// false) in the inputs' type, k and v stay per key/value head.
func.func @causal_gqa_bool_mask(%q: !torch.vtensor<[1,4,8,16],bf16>, %k: !torch.vtensor<[1,2,8,16],bf16>, %v: !torch.vtensor<[1,2,8,16],bf16>, %m: !torch.vtensor<[1,1,8,8],i1>) -> !torch.vtensor<[1,4,8,16],bf16> {
  %zero = torch.constant.float 0.000000e+00
  %true = torch.constant.bool true
  %scale = torch.constant.float 5.000000e-01
  %r = torch.aten.scaled_dot_product_attention %q, %k, %v, %m, %zero, %true, %scale, %true : !torch.vtensor<[1,4,8,16],bf16>, !torch.vtensor<[1,2,8,16],bf16>, !torch.vtensor<[1,2,8,16],bf16>, !torch.vtensor<[1,1,8,8],i1>, !torch.float, !torch.bool, !torch.float, !torch.bool -> !torch.vtensor<[1,4,8,16],bf16>
  return %r : !torch.vtensor<[1,4,8,16],bf16>
}
// CHECK-LABEL: func.func @causal_gqa_bool_mask(
// CHECK:       %[[NEGINF:.*]] = torch.constant.float 0xFFF0000000000000
// CHECK-NEXT:  %[[ADD:.*]] = torch.aten.where.Scalar %m, %{{.*}}, %[[NEGINF]] : !torch.vtensor<[1,1,8,8],i1>, !torch.float, !torch.float -> !torch.vtensor<[1,1,8,8],bf16>
// CHECK:       %[[M:.*]] = torch_c.to_builtin_tensor %[[ADD]]
// CHECK-NEXT:  mips.attention %{{.*}}, %{{.*}}, %{{.*}} mask(%[[M]] : tensor<1x1x8x8xbf16>) causal scale(5.000000e-01 : f64) : tensor<1x4x8x16xbf16>, tensor<1x2x8x16xbf16>, tensor<1x2x8x16xbf16> -> tensor<1x4x8x16xbf16>

// Dynamic shapes stay on the decomposition.
func.func @dynamic(%q: !torch.vtensor<[?,2,?,8],f32>) -> !torch.vtensor<[?,2,?,8],f32> {
  %none = torch.constant.none
  %zero = torch.constant.float 0.000000e+00
  %true = torch.constant.bool true
  %false = torch.constant.bool false
  %r = torch.aten.scaled_dot_product_attention %q, %q, %q, %none, %zero, %true, %none, %false : !torch.vtensor<[?,2,?,8],f32>, !torch.vtensor<[?,2,?,8],f32>, !torch.vtensor<[?,2,?,8],f32>, !torch.none, !torch.float, !torch.bool, !torch.none, !torch.bool -> !torch.vtensor<[?,2,?,8],f32>
  return %r : !torch.vtensor<[?,2,?,8],f32>
}
// CHECK-LABEL: func.func @dynamic(
// CHECK-NOT:   mips.attention
// CHECK:       torch.aten.softmax.int
