// RUN: mipsc opt %s -p decompose-torch | filecheck %s
// RUN: mipsc opt %s -p decompose-torch,convert-torch-to-mips --remarks 2>&1 | filecheck %s --check-prefix=ROUTED

// torch.linalg.matmul as iree-turbine's aot.export prints it: a `torch.operator` (IREE's torch
// dialect has no linalg_matmul), which iree-compile failed to legalize. It is torch.matmul.
func.func @linalg_matmul(%a: !torch.vtensor<[3,4],f32>, %b: !torch.vtensor<[4,5],f32>) -> !torch.vtensor<[3,5],f32> {
  %0 = torch.operator "torch.aten.linalg_matmul"(%a, %b) : (!torch.vtensor<[3,4],f32>, !torch.vtensor<[4,5],f32>) -> !torch.vtensor<[3,5],f32>
  return %0 : !torch.vtensor<[3,5],f32>
}
// CHECK-LABEL: func.func @linalg_matmul(
// CHECK-NEXT:    %0 = torch.aten.matmul %a, %b : !torch.vtensor<[3,4],f32>, !torch.vtensor<[4,5],f32> -> !torch.vtensor<[3,5],f32>
// CHECK-NOT:     torch.operator

// ROUTED: aliases.mlir:7:3: remark: [convert-torch-to-mips] torch.aten.matmul (3x4, 4x5) f32 -> mips.matmul
