// From tests/data/bmm.mlir.
module @module {
  func.func @main(%arg0: !torch.vtensor<[3,5,7],f32>, %arg1: !torch.vtensor<[3,7,4],f32>) -> !torch.vtensor<[3,5,4],f32> attributes {torch.assume_strict_symbolic_shapes} {
    %0 = torch.aten.bmm %arg0, %arg1 : !torch.vtensor<[3,5,7],f32>, !torch.vtensor<[3,7,4],f32> -> !torch.vtensor<[3,5,4],f32>
    return %0 : !torch.vtensor<[3,5,4],f32>
  }
}
