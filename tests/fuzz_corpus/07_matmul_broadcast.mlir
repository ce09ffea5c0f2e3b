// From tests/data/matmul_broadcast.mlir.
module @module {
  func.func @main(%arg0: !torch.vtensor<[2,5,6],f32>, %arg1: !torch.vtensor<[6,4],f32>, %arg2: !torch.vtensor<[2,1,5,6],f32>, %arg3: !torch.vtensor<[1,3,6,4],f32>) -> (!torch.vtensor<[2,5,4],f32>, !torch.vtensor<[2,3,5,4],f32>) attributes {torch.assume_strict_symbolic_shapes} {
    %0 = torch.aten.matmul %arg0, %arg1 : !torch.vtensor<[2,5,6],f32>, !torch.vtensor<[6,4],f32> -> !torch.vtensor<[2,5,4],f32>
    %1 = torch.aten.matmul %arg2, %arg3 : !torch.vtensor<[2,1,5,6],f32>, !torch.vtensor<[1,3,6,4],f32> -> !torch.vtensor<[2,3,5,4],f32>
    return %0, %1 : !torch.vtensor<[2,5,4],f32>, !torch.vtensor<[2,3,5,4],f32>
  }
}
