// RUN: mipsc opt %s -p "decompose-torch" --remarks 2>&1 | filecheck %s

// An f64 attention is not the kernels' (no f64 kernel) and stays on IREE's path, but as
// torch's definition: IREE 3.13's own attention op computes f64 in f32 precision (errors of
// 1e-7 against torch's f64, where its products and softmax in f64 are exact to 1e-16). No
// widening, no narrowing: every op stays f64.
// CHECK: attention_f64.mlir:14:3: remark: [decompose-torch] torch.aten.scaled_dot_product_attention left on IREE's path: element type f64 is not supported by the kernel; as torch defines it (q·kᵀ, softmax, ·v in f64: IREE's own attention computes f64 in f32)

func.func @causal_f64(%q: !torch.vtensor<[2,8,16],f64>, %k: !torch.vtensor<[2,10,16],f64>, %v: !torch.vtensor<[2,10,12],f64>) -> !torch.vtensor<[2,8,12],f64> {
  %none = torch.constant.none
  %zero = torch.constant.float 0.000000e+00
  %true = torch.constant.bool true
  %false = torch.constant.bool false
  %r = torch.aten.scaled_dot_product_attention %q, %k, %v, %none, %zero, %true, %none, %false : !torch.vtensor<[2,8,16],f64>, !torch.vtensor<[2,10,16],f64>, !torch.vtensor<[2,10,12],f64>, !torch.none, !torch.float, !torch.bool, !torch.none, !torch.bool -> !torch.vtensor<[2,8,12],f64>
  return %r : !torch.vtensor<[2,8,12],f64>
}
// CHECK-LABEL: func.func @causal_f64(
// CHECK-NOT:   torch.aten.to.dtype
// CHECK-NOT:   torch.aten.scaled_dot_product_attention %
// CHECK:       %[[S:.*]] = torch.aten.matmul %q, %{{.*}} {mipsc.part_of = "torch.aten.scaled_dot_product_attention"} : !torch.vtensor<[2,8,16],f64>, !torch.vtensor<[2,16,10],f64> -> !torch.vtensor<[2,8,10],f64>
// CHECK:       torch.aten.tril
// CHECK:       %[[P:.*]] = torch.aten.softmax.int %{{.*}}, %{{.*}}, %{{.*}} : !torch.vtensor<[2,8,10],f64>, !torch.int, !torch.none -> !torch.vtensor<[2,8,10],f64>
// CHECK-NEXT:  %r = torch.aten.matmul %[[P]], %v {mipsc.part_of = "torch.aten.scaled_dot_product_attention"} : !torch.vtensor<[2,8,10],f64>, !torch.vtensor<[2,10,12],f64> -> !torch.vtensor<[2,8,12],f64>
// CHECK-NOT:   torch.aten.to.dtype
