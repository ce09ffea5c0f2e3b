// RUN: mipsc opt %s -p "decompose-torch{fuse_attention=false}" --remarks 2>&1 | filecheck %s

// The remarks (stderr, first): each attention says what it became, or why it stays.
// CHECK-DAG: attention.mlir:14:3: remark: [decompose-torch] torch.aten.scaled_dot_product_attention -> q·kᵀ and ·v in the kernel, torch's softmax between
// CHECK-DAG: attention.mlir:31:3: remark: [decompose-torch] torch.aten.scaled_dot_product_attention -> q·kᵀ and ·v in the kernel, torch's softmax between (causal, masked), 2 query heads per key/value head
// CHECK-DAG: attention.mlir:68:3: remark: [decompose-torch] torch.aten.scaled_dot_product_attention left on IREE's path (its fused attention): dropout

// Plain attention: q·kᵀ (kᵀ a transpose the conversion reads by strides), the default scale
// 1/sqrt(16), torch's softmax, ·v. The products are marked as the attention's.
func.func @plain(%q: !torch.vtensor<[2,8,16],f32>, %k: !torch.vtensor<[2,10,16],f32>, %v: !torch.vtensor<[2,10,12],f32>) -> !torch.vtensor<[2,8,12],f32> {
  %none = torch.constant.none
  %zero = torch.constant.float 0.000000e+00
  %false = torch.constant.bool false
  %r = torch.aten.scaled_dot_product_attention %q, %k, %v, %none, %zero, %false, %none, %false : !torch.vtensor<[2,8,16],f32>, !torch.vtensor<[2,10,16],f32>, !torch.vtensor<[2,10,12],f32>, !torch.none, !torch.float, !torch.bool, !torch.none, !torch.bool -> !torch.vtensor<[2,8,12],f32>
  return %r : !torch.vtensor<[2,8,12],f32>
}
// CHECK-LABEL: func.func @plain(
// CHECK:       %[[KT:.*]] = torch.aten.transpose.int %k, %{{.*}}, %{{.*}} : !torch.vtensor<[2,10,16],f32>, !torch.int, !torch.int -> !torch.vtensor<[2,16,10],f32>
// CHECK-NEXT:  %[[S:.*]] = torch.aten.matmul %q, %[[KT]] {mipsc.part_of = "torch.aten.scaled_dot_product_attention"} : !torch.vtensor<[2,8,16],f32>, !torch.vtensor<[2,16,10],f32> -> !torch.vtensor<[2,8,10],f32>
// CHECK-NEXT:  %[[SCALE:.*]] = torch.constant.float 0.25
// CHECK-NEXT:  %[[X:.*]] = torch.aten.mul.Scalar %[[S]], %[[SCALE]]
// CHECK:       %[[P:.*]] = torch.aten.softmax.int %[[X]], %{{.*}}, %{{.*}} : !torch.vtensor<[2,8,10],f32>, !torch.int, !torch.none -> !torch.vtensor<[2,8,10],f32>
// CHECK-NEXT:  %r = torch.aten.matmul %[[P]], %v {mipsc.part_of = "torch.aten.scaled_dot_product_attention"} : !torch.vtensor<[2,8,10],f32>, !torch.vtensor<[2,10,12],f32> -> !torch.vtensor<[2,8,12],f32>

// Causal, grouped-query (4 query heads on 2 key/value heads), a boolean mask, a custom scale:
// q is viewed as [1, 2, 2·8, 16] (never k or v repeated), -inf where tril or the mask is false.
func.func @causal_gqa_mask(%q: !torch.vtensor<[1,4,8,16],f32>, %k: !torch.vtensor<[1,2,8,16],f32>, %v: !torch.vtensor<[1,2,8,16],f32>, %m: !torch.vtensor<[1,1,8,8],i1>) -> !torch.vtensor<[1,4,8,16],f32> {
  %zero = torch.constant.float 0.000000e+00
  %true = torch.constant.bool true
  %scale = torch.constant.float 5.000000e-01
  %r = torch.aten.scaled_dot_product_attention %q, %k, %v, %m, %zero, %true, %scale, %true : !torch.vtensor<[1,4,8,16],f32>, !torch.vtensor<[1,2,8,16],f32>, !torch.vtensor<[1,2,8,16],f32>, !torch.vtensor<[1,1,8,8],i1>, !torch.float, !torch.bool, !torch.float, !torch.bool -> !torch.vtensor<[1,4,8,16],f32>
  return %r : !torch.vtensor<[1,4,8,16],f32>
}
// CHECK-LABEL: func.func @causal_gqa_mask(
// CHECK:       %[[QG:.*]] = torch.aten.view %q, %{{.*}} : !torch.vtensor<[1,4,8,16],f32>, !torch.list<int> -> !torch.vtensor<[1,2,16,16],f32>
// CHECK-NEXT:  %[[S2:.*]] = torch.aten.matmul %[[QG]], %{{.*}} {mipsc.part_of = "torch.aten.scaled_dot_product_attention"} : !torch.vtensor<[1,2,16,16],f32>, !torch.vtensor<[1,2,16,8],f32> -> !torch.vtensor<[1,2,16,8],f32>
// CHECK:       %[[SH:.*]] = torch.aten.view %[[S2]], %{{.*}} -> !torch.vtensor<[1,4,8,8],f32>
// CHECK:       %[[HALF:.*]] = torch.constant.float 0.5
// CHECK-NEXT:  torch.aten.mul.Scalar %[[SH]], %[[HALF]]
// CHECK:       %[[ONES:.*]] = torch.aten.ones %{{.*}} -> !torch.vtensor<[8,8],i1>
// CHECK:       %[[TRIL:.*]] = torch.aten.tril %[[ONES]]
// CHECK:       %[[NEGINF:.*]] = torch.constant.float 0xFFF0000000000000
// CHECK-NEXT:  %[[C:.*]] = torch.aten.where.ScalarOther %[[TRIL]], %{{.*}}, %[[NEGINF]]
// CHECK:       torch.aten.where.ScalarOther %m, %[[C]], %{{.*}} : !torch.vtensor<[1,1,8,8],i1>, !torch.vtensor<[1,4,8,8],f32>, !torch.float -> !torch.vtensor<[1,4,8,8],f32>
// CHECK:       torch.aten.softmax.int
// CHECK:       torch.aten.view %{{.*}} -> !torch.vtensor<[1,2,16,8],f32>
// CHECK-NEXT:  %[[O:.*]] = torch.aten.matmul %{{.*}}, %v {{.*}} -> !torch.vtensor<[1,2,16,16],f32>
// CHECK:       %r = torch.aten.view %[[O]], %{{.*}} -> !torch.vtensor<[1,4,8,16],f32>

// A float mask is added after the scale.
func.func @float_mask(%q: !torch.vtensor<[4,8],f32>, %m: !torch.vtensor<[4,4],f32>) -> !torch.vtensor<[4,8],f32> {
  %none = torch.constant.none
  %zero = torch.constant.float 0.000000e+00
  %false = torch.constant.bool false
  %r = torch.aten.scaled_dot_product_attention %q, %q, %q, %m, %zero, %false, %none, %false : !torch.vtensor<[4,8],f32>, !torch.vtensor<[4,8],f32>, !torch.vtensor<[4,8],f32>, !torch.vtensor<[4,4],f32>, !torch.float, !torch.bool, !torch.none, !torch.bool -> !torch.vtensor<[4,8],f32>
  return %r : !torch.vtensor<[4,8],f32>
}
// CHECK-LABEL: func.func @float_mask(
// CHECK:       %[[SC:.*]] = torch.aten.mul.Scalar
// CHECK-NEXT:  %[[ONE:.*]] = torch.constant.int 1
// CHECK-NEXT:  torch.aten.add.Tensor %[[SC]], %m, %[[ONE]] : !torch.vtensor<[4,4],f32>, !torch.vtensor<[4,4],f32>, !torch.int -> !torch.vtensor<[4,4],f32>

// Dropout stays: a remark says why.
func.func @dropout(%q: !torch.vtensor<[4,8],f32>) -> !torch.vtensor<[4,8],f32> {
  %none = torch.constant.none
  %p = torch.constant.float 1.000000e-01
  %false = torch.constant.bool false
  %r = torch.aten.scaled_dot_product_attention %q, %q, %q, %none, %p, %false, %none, %false : !torch.vtensor<[4,8],f32>, !torch.vtensor<[4,8],f32>, !torch.vtensor<[4,8],f32>, !torch.none, !torch.float, !torch.bool, !torch.none, !torch.bool -> !torch.vtensor<[4,8],f32>
  return %r : !torch.vtensor<[4,8],f32>
}
// CHECK-LABEL: func.func @dropout(
// CHECK-NEXT:  torch.constant.none
// CHECK:       %r = torch.aten.scaled_dot_product_attention %q, %q, %q
