// RUN: mipsc opt %s --convert-torch-to-mips --remarks 2>&1 | filecheck %s

// Integer and f64 matmuls stay on IREE's own path, untouched, and a remark says why.
func.func @int_mm(%a: !torch.vtensor<[2,3],si64>, %b: !torch.vtensor<[3,4],si64>) -> !torch.vtensor<[2,4],si64> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[2,3],si64>, !torch.vtensor<[3,4],si64> -> !torch.vtensor<[2,4],si64>
  return %0 : !torch.vtensor<[2,4],si64>
}

func.func @f64_mm(%a: !torch.vtensor<[2,3],f64>, %b: !torch.vtensor<[3,4],f64>) -> !torch.vtensor<[2,4],f64> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[2,3],f64>, !torch.vtensor<[3,4],f64> -> !torch.vtensor<[2,4],f64>
  return %0 : !torch.vtensor<[2,4],f64>
}

// CHECK-DAG: unsupported.mlir:5:3: remark: [convert-torch-to-mips] torch.aten.mm left on IREE's path: element type si64 is not supported by the kernel
// CHECK-DAG: unsupported.mlir:10:3: remark: [convert-torch-to-mips] torch.aten.mm left on IREE's path: element type f64 is not supported by the kernel
// CHECK-NOT: mips.matmul
// CHECK: torch.aten.mm %{{.*}}, %{{.*}} : !torch.vtensor<[2,3],si64>, !torch.vtensor<[3,4],si64> -> !torch.vtensor<[2,4],si64>
// CHECK: torch.aten.mm %{{.*}}, %{{.*}} : !torch.vtensor<[2,3],f64>, !torch.vtensor<[3,4],f64> -> !torch.vtensor<[2,4],f64>
