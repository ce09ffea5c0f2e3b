// RUN: mipsc opt %s -p decompose-torch --remarks 2>&1 | filecheck %s

// A one-operand einsum has no product: it becomes torch's definition (each repeated label's
// diagonal, a sum over the labels the output lacks, a permute), on IREE's path. IREE 3.13's own
// einsum lowering failed on each that sums, and on `ij` ("failed to legalize operation
// 'torch.aten.sum.dim_IntList'": it made a result of unknown rank).
// CHECK-DAG: einsum_one_operand.mlir:16:3: remark: [decompose-torch] torch.aten.einsum 'bii->b' has one operand, no product: as diagonal, sum and permute, on IREE's path
// CHECK-DAG: einsum_one_operand.mlir:28:3: remark: [decompose-torch] torch.aten.einsum 'ji' has one operand, no product: as diagonal, sum and permute, on IREE's path
// CHECK-DAG: einsum_one_operand.mlir:40:3: remark: [decompose-torch] torch.aten.einsum '...ij->...' has one operand, no product: as diagonal, sum and permute, on IREE's path

// A batch of traces: the diagonal of dims 1 and 2 (last), then summed.
func.func @trace(%x: !torch.vtensor<[2,3,3],f32>) -> !torch.vtensor<[2],f32> {
  %eq = torch.constant.str "bii->b"
  %l = torch.prim.ListConstruct %x : (!torch.vtensor<[2,3,3],f32>) -> !torch.list<vtensor>
  %none = torch.constant.none
  %r = torch.aten.einsum %eq, %l, %none : !torch.str, !torch.list<vtensor>, !torch.none -> !torch.vtensor<[2],f32>
  return %r : !torch.vtensor<[2],f32>
}
// CHECK-LABEL: func.func @trace(
// CHECK:       %[[D:.*]] = torch.aten.diagonal %x, %{{.*}}, %{{.*}}, %{{.*}} : !torch.vtensor<[2,3,3],f32>, !torch.int, !torch.int, !torch.int -> !torch.vtensor<[2,3],f32>
// CHECK:       torch.aten.sum.dim_IntList %[[D]], %{{.*}}, %{{.*}}, %{{.*}} : !torch.vtensor<[2,3],f32>, !torch.list<int>, !torch.bool, !torch.none -> !torch.vtensor<[2],f32>

// Implicit output (`ji->ij`): no sum, one permute.
func.func @implicit_transpose(%x: !torch.vtensor<[3,4],f32>) -> !torch.vtensor<[4,3],f32> {
  %eq = torch.constant.str "ji"
  %l = torch.prim.ListConstruct %x : (!torch.vtensor<[3,4],f32>) -> !torch.list<vtensor>
  %none = torch.constant.none
  %r = torch.aten.einsum %eq, %l, %none : !torch.str, !torch.list<vtensor>, !torch.none -> !torch.vtensor<[4,3],f32>
  return %r : !torch.vtensor<[4,3],f32>
}
// CHECK-LABEL: func.func @implicit_transpose(
// CHECK-NOT:   torch.aten.sum
// CHECK:       torch.aten.permute %x, %{{.*}} : !torch.vtensor<[3,4],f32>, !torch.list<int> -> !torch.vtensor<[4,3],f32>

// An ellipsis kept, the rest summed (a dynamic batch).
func.func @ellipsis(%x: !torch.vtensor<[?,3,4],f32>) -> !torch.vtensor<[?],f32> {
  %eq = torch.constant.str "...ij->..."
  %l = torch.prim.ListConstruct %x : (!torch.vtensor<[?,3,4],f32>) -> !torch.list<vtensor>
  %none = torch.constant.none
  %r = torch.aten.einsum %eq, %l, %none : !torch.str, !torch.list<vtensor>, !torch.none -> !torch.vtensor<[?],f32>
  return %r : !torch.vtensor<[?],f32>
}
// CHECK-LABEL: func.func @ellipsis(
// CHECK:       torch.aten.sum.dim_IntList %x, %{{.*}}, %{{.*}}, %{{.*}} : !torch.vtensor<[?,3,4],f32>, !torch.list<int>, !torch.bool, !torch.none -> !torch.vtensor<[?],f32>
// CHECK-NOT:   torch.aten.einsum
