// From tests/data/mv.mlir.
module @module {
  func.func @main(%arg0: !torch.vtensor<[9,13],f32>, %arg1: !torch.vtensor<[13],f32>) -> !torch.vtensor<[9],f32> attributes {torch.assume_strict_symbolic_shapes} {
    %0 = torch.aten.mv %arg0, %arg1 : !torch.vtensor<[9,13],f32>, !torch.vtensor<[13],f32> -> !torch.vtensor<[9],f32>
    return %0 : !torch.vtensor<[9],f32>
  }
}
