// From tests/filecheck/convert-torch-to-mips/unsupported.mlir.
func.func @int_mm(%a: !torch.vtensor<[2,3],si64>, %b: !torch.vtensor<[3,4],si64>) -> !torch.vtensor<[2,4],si64> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[2,3],si64>, !torch.vtensor<[3,4],si64> -> !torch.vtensor<[2,4],si64>
  return %0 : !torch.vtensor<[2,4],si64>
}

func.func @f64_mm(%a: !torch.vtensor<[2,3],f64>, %b: !torch.vtensor<[3,4],f64>) -> !torch.vtensor<[2,4],f64> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[2,3],f64>, !torch.vtensor<[3,4],f64> -> !torch.vtensor<[2,4],f64>
  return %0 : !torch.vtensor<[2,4],f64>
}
