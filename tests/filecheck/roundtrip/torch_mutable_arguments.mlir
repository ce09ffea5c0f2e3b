// RUN: mipsc opt %s | filecheck %s
// RUN: mipsc opt %s > %t.1.mlir && mipsc opt %t.1.mlir > %t.2.mlir && diff %t.1.mlir %t.2.mlir
// RUN: mipsc opt %s -p convert-torch-to-mips | filecheck %s --check-prefix=MIPS

// An input that forward changes in place (`x.add_(1)`): torch.export functionalizes it into a
// mutable `!torch.tensor` argument, its value read with torch.copy.to_vtensor and the new value
// written back with torch.overwrite.tensor.contents. They print back in torch-mlir's syntax,
// and the matmul after them is still routed.
func.func @main(%arg0: !torch.tensor<[4,8],f32>, %arg1: !torch.vtensor<[8,8],f32>) -> !torch.vtensor<[4,8],f32> {
  %0 = torch.copy.to_vtensor %arg0 : !torch.vtensor<[4,8],f32>
  %int1 = torch.constant.int 1
  %1 = torch.aten.add.Scalar %0, %int1, %int1 : !torch.vtensor<[4,8],f32>, !torch.int, !torch.int -> !torch.vtensor<[4,8],f32>
  torch.overwrite.tensor.contents %1 overwrites %arg0 : !torch.vtensor<[4,8],f32>, !torch.tensor<[4,8],f32>
  %2 = torch.copy.to_tensor %1 : !torch.tensor<[4,8],f32>
  %3 = torch.aten.matmul %1, %arg1 : !torch.vtensor<[4,8],f32>, !torch.vtensor<[8,8],f32> -> !torch.vtensor<[4,8],f32>
  return %3 : !torch.vtensor<[4,8],f32>
}
// CHECK:      func.func @main(%arg0: !torch.tensor<[4,8],f32>, %arg1: !torch.vtensor<[8,8],f32>)
// CHECK-NEXT:   %0 = torch.copy.to_vtensor %arg0 : !torch.vtensor<[4,8],f32>
// CHECK:        torch.overwrite.tensor.contents %1 overwrites %arg0 : !torch.vtensor<[4,8],f32>, !torch.tensor<[4,8],f32>
// CHECK-NEXT:   %2 = torch.copy.to_tensor %1 : !torch.tensor<[4,8],f32>
// MIPS:         mips.matmul
