// From tests/filecheck/convert-torch-to-mips/family.mlir.
func.func @linear(%x: !torch.vtensor<[2,3,16],f32>, %w: !torch.vtensor<[10,16],f32>, %b: !torch.vtensor<[10],f32>) -> !torch.vtensor<[2,3,10],f32> {
  %0 = torch.aten.linear %x, %w, %b : !torch.vtensor<[2,3,16],f32>, !torch.vtensor<[10,16],f32>, !torch.vtensor<[10],f32> -> !torch.vtensor<[2,3,10],f32>
  return %0 : !torch.vtensor<[2,3,10],f32>
}

func.func @scores(%q: !torch.vtensor<[2,8,16],f32>, %k: !torch.vtensor<[2,8,16],f32>) -> !torch.vtensor<[2,8,8],f32> {
  %int-2 = torch.constant.int -2
  %int-1 = torch.constant.int -1
  %kt = torch.aten.transpose.int %k, %int-2, %int-1 : !torch.vtensor<[2,8,16],f32>, !torch.int, !torch.int -> !torch.vtensor<[2,16,8],f32>
  %0 = torch.aten.matmul %q, %kt : !torch.vtensor<[2,8,16],f32>, !torch.vtensor<[2,16,8],f32> -> !torch.vtensor<[2,8,8],f32>
  return %0 : !torch.vtensor<[2,8,8],f32>
}

func.func @t_and_permute(%a: !torch.vtensor<[7,6],f32>, %b: !torch.vtensor<[5,7],f32>) -> !torch.vtensor<[6,5],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %at = torch.aten.t %a : !torch.vtensor<[7,6],f32> -> !torch.vtensor<[6,7],f32>
  %perm = torch.prim.ListConstruct %int1, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %bt = torch.aten.permute %b, %perm : !torch.vtensor<[5,7],f32>, !torch.list<int> -> !torch.vtensor<[7,5],f32>
  %0 = torch.aten.mm %at, %bt : !torch.vtensor<[6,7],f32>, !torch.vtensor<[7,5],f32> -> !torch.vtensor<[6,5],f32>
  return %0 : !torch.vtensor<[6,5],f32>
}

func.func @dot(%a: !torch.vtensor<[7],f32>, %b: !torch.vtensor<[7],f32>) -> !torch.vtensor<[],f32> {
  %0 = torch.aten.matmul %a, %b : !torch.vtensor<[7],f32>, !torch.vtensor<[7],f32> -> !torch.vtensor<[],f32>
  return %0 : !torch.vtensor<[],f32>
}

func.func @addmm(%c: !torch.vtensor<[5],f32>, %a: !torch.vtensor<[4,3],f32>, %b: !torch.vtensor<[3,5],f32>) -> (!torch.vtensor<[4,5],f32>, !torch.vtensor<[4,5],f32>) {
  %int1 = torch.constant.int 1
  %beta = torch.constant.float 5.000000e-01
  %alpha = torch.constant.float 2.000000e+00
  %0 = torch.aten.addmm %c, %a, %b, %beta, %int1 : !torch.vtensor<[5],f32>, !torch.vtensor<[4,3],f32>, !torch.vtensor<[3,5],f32>, !torch.float, !torch.int -> !torch.vtensor<[4,5],f32>
  %1 = torch.aten.addmm %c, %a, %b, %int1, %alpha : !torch.vtensor<[5],f32>, !torch.vtensor<[4,3],f32>, !torch.vtensor<[3,5],f32>, !torch.int, !torch.float -> !torch.vtensor<[4,5],f32>
  return %0, %1 : !torch.vtensor<[4,5],f32>, !torch.vtensor<[4,5],f32>
}
