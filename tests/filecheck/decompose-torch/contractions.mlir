// RUN: mipsc opt %s -p decompose-torch | filecheck %s

// einsum "bhqd,bhkd->bhqk": k is permuted to [b, h, d, k] (a swap of the last two dims, which
// the conversion reads by strides), then one matmul; nothing to view or permute back.
func.func @scores(%q: !torch.vtensor<[2,3,5,8],f32>, %k: !torch.vtensor<[2,3,7,8],f32>) -> !torch.vtensor<[2,3,5,7],f32> {
  %eq = torch.constant.str "bhqd,bhkd->bhqk"
  %none = torch.constant.none
  %ops = torch.prim.ListConstruct %q, %k : (!torch.vtensor<[2,3,5,8],f32>, !torch.vtensor<[2,3,7,8],f32>) -> !torch.list<vtensor>
  %r = torch.aten.einsum %eq, %ops, %none : !torch.str, !torch.list<vtensor>, !torch.none -> !torch.vtensor<[2,3,5,7],f32>
  return %r : !torch.vtensor<[2,3,5,7],f32>
}
// CHECK-LABEL: func.func @scores(
// CHECK:       %[[KT:.*]] = torch.aten.permute %k, %{{.*}} : !torch.vtensor<[2,3,7,8],f32>, !torch.list<int> -> !torch.vtensor<[2,3,8,7],f32>
// CHECK-NEXT:  %r = torch.aten.matmul %q, %[[KT]] {mipsc.part_of = "torch.aten.einsum"} : !torch.vtensor<[2,3,5,8],f32>, !torch.vtensor<[2,3,8,7],f32> -> !torch.vtensor<[2,3,5,7],f32>
// CHECK-NEXT:  func.return %r

// Several labels folded into M and N ("abc,cde->abde"): views around one 2-D matmul.
func.func @folded(%a: !torch.vtensor<[2,3,4],f32>, %b: !torch.vtensor<[4,5,6],f32>) -> !torch.vtensor<[2,3,5,6],f32> {
  %eq = torch.constant.str "abc,cde->abde"
  %none = torch.constant.none
  %ops = torch.prim.ListConstruct %a, %b : (!torch.vtensor<[2,3,4],f32>, !torch.vtensor<[4,5,6],f32>) -> !torch.list<vtensor>
  %r = torch.aten.einsum %eq, %ops, %none : !torch.str, !torch.list<vtensor>, !torch.none -> !torch.vtensor<[2,3,5,6],f32>
  return %r : !torch.vtensor<[2,3,5,6],f32>
}
// CHECK-LABEL: func.func @folded(
// CHECK:       %[[A:.*]] = torch.aten.view %a, %{{.*}} -> !torch.vtensor<[6,4],f32>
// CHECK:       %[[B:.*]] = torch.aten.view %b, %{{.*}} -> !torch.vtensor<[4,30],f32>
// CHECK-NEXT:  %[[P:.*]] = torch.aten.matmul %[[A]], %[[B]] {{.*}} -> !torch.vtensor<[6,30],f32>
// CHECK:       %r = torch.aten.view %[[P]], %{{.*}} -> !torch.vtensor<[2,3,5,6],f32>

// bilinear: x2 · (W viewed [O·I, J])ᵀ, viewed [N, O, I], times x1 as [N, I, 1]; the bias added.
func.func @bilinear(%x1: !torch.vtensor<[3,5],f32>, %x2: !torch.vtensor<[3,6],f32>, %w: !torch.vtensor<[7,5,6],f32>, %b: !torch.vtensor<[7],f32>) -> !torch.vtensor<[3,7],f32> {
  %r = torch.aten.bilinear %x1, %x2, %w, %b : !torch.vtensor<[3,5],f32>, !torch.vtensor<[3,6],f32>, !torch.vtensor<[7,5,6],f32>, !torch.vtensor<[7],f32> -> !torch.vtensor<[3,7],f32>
  return %r : !torch.vtensor<[3,7],f32>
}
// CHECK-LABEL: func.func @bilinear(
// CHECK:       %[[WF:.*]] = torch.aten.view %w, %{{.*}} -> !torch.vtensor<[35,6],f32>
// CHECK:       %[[WT:.*]] = torch.aten.transpose.int %[[WF]], %{{.*}}, %{{.*}} : !torch.vtensor<[35,6],f32>, !torch.int, !torch.int -> !torch.vtensor<[6,35],f32>
// CHECK:       %[[T:.*]] = torch.aten.matmul %{{.*}}, %[[WT]] {mipsc.part_of = "torch.aten.bilinear"} : !torch.vtensor<[3,6],f32>, !torch.vtensor<[6,35],f32> -> !torch.vtensor<[3,35],f32>
// CHECK:       %[[T3:.*]] = torch.aten.view %[[T]], %{{.*}} -> !torch.vtensor<[3,7,5],f32>
// CHECK:       %[[X1:.*]] = torch.aten.view %x1, %{{.*}} -> !torch.vtensor<[3,5,1],f32>
// CHECK-NEXT:  %[[Y:.*]] = torch.aten.matmul %[[T3]], %[[X1]] {mipsc.part_of = "torch.aten.bilinear"} : !torch.vtensor<[3,7,5],f32>, !torch.vtensor<[3,5,1],f32> -> !torch.vtensor<[3,7,1],f32>
// CHECK:       %[[Y2:.*]] = torch.aten.view %[[Y]], %{{.*}} -> !torch.vtensor<[3,7],f32>
// CHECK:       %r = torch.aten.add.Tensor %[[Y2]], %b, %{{.*}}

// dot and linear with a 1-D weight: a matmul (1-D operands), plus the bias.
func.func @dot(%a: !torch.vtensor<[9],f32>, %b: !torch.vtensor<[9],f32>) -> !torch.vtensor<[],f32> {
  %r = torch.aten.dot %a, %b : !torch.vtensor<[9],f32>, !torch.vtensor<[9],f32> -> !torch.vtensor<[],f32>
  return %r : !torch.vtensor<[],f32>
}
// CHECK-LABEL: func.func @dot(
// CHECK-NEXT:  %r = torch.aten.matmul %a, %b {mipsc.part_of = "torch.aten.dot"} : !torch.vtensor<[9],f32>, !torch.vtensor<[9],f32> -> !torch.vtensor<[],f32>

func.func @linear_vector_weight(%x: !torch.vtensor<[4,6],f32>, %w: !torch.vtensor<[6],f32>, %b: !torch.vtensor<[],f32>) -> !torch.vtensor<[4],f32> {
  %r = torch.aten.linear %x, %w, %b : !torch.vtensor<[4,6],f32>, !torch.vtensor<[6],f32>, !torch.vtensor<[],f32> -> !torch.vtensor<[4],f32>
  return %r : !torch.vtensor<[4],f32>
}
// CHECK-LABEL: func.func @linear_vector_weight(
// CHECK-NEXT:  %[[M:.*]] = torch.aten.matmul %x, %w {mipsc.part_of = "torch.aten.linear"} : !torch.vtensor<[4,6],f32>, !torch.vtensor<[6],f32> -> !torch.vtensor<[4],f32>
// CHECK-NEXT:  %[[ONE:.*]] = torch.constant.int 1
// CHECK-NEXT:  %r = torch.aten.add.Tensor %[[M]], %b, %[[ONE]]

// A one-operand einsum that sums out and reorders labels ("ijk->ki"): a sum over j, then a
// permute; no product (IREE's own lowering of it fails to legalize its sum).
func.func @one_operand(%x: !torch.vtensor<[2,3,4],f32>) -> !torch.vtensor<[4,2],f32> {
  %eq = torch.constant.str "ijk->ki"
  %none = torch.constant.none
  %ops = torch.prim.ListConstruct %x : (!torch.vtensor<[2,3,4],f32>) -> !torch.list<vtensor>
  %r = torch.aten.einsum %eq, %ops, %none : !torch.str, !torch.list<vtensor>, !torch.none -> !torch.vtensor<[4,2],f32>
  return %r : !torch.vtensor<[4,2],f32>
}
// CHECK-LABEL: func.func @one_operand(
// CHECK:       %[[S:.*]] = torch.aten.sum.dim_IntList %x, %{{.*}} -> !torch.vtensor<[2,4],f32>
// CHECK-NEXT:  %{{.*}} = torch.constant.int 1
// CHECK:       %r = torch.aten.permute %[[S]], %{{.*}} -> !torch.vtensor<[4,2],f32>
// CHECK-NOT:   torch.aten.matmul
