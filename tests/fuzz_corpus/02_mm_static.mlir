// From tests/data/mm_static.mlir.
module @module {
  func.func @main(%arg0: !torch.vtensor<[37,19],f32>, %arg1: !torch.vtensor<[19,23],f32>) -> !torch.vtensor<[37,23],f32> attributes {torch.assume_strict_symbolic_shapes} {
    %0 = torch.aten.mm %arg0, %arg1 : !torch.vtensor<[37,19],f32>, !torch.vtensor<[19,23],f32> -> !torch.vtensor<[37,23],f32>
    return %0 : !torch.vtensor<[37,23],f32>
  }
}
