// From tests/data/mm_chain.mlir.
module @module {
  func.func @main(%arg0: !torch.vtensor<[12,20],f32>, %arg1: !torch.vtensor<[20,24],f32>, %arg2: !torch.vtensor<[24,10],f32>) -> !torch.vtensor<[12,10],f32> attributes {torch.assume_strict_symbolic_shapes} {
    %0 = torch.aten.mm %arg0, %arg1 : !torch.vtensor<[12,20],f32>, !torch.vtensor<[20,24],f32> -> !torch.vtensor<[12,24],f32>
    %1 = torch.vtensor.literal(dense<2.500000e-01> : tensor<1xf32>) : !torch.vtensor<[1],f32>
    %int1 = torch.constant.int 1
    %2 = torch.aten.add.Tensor %0, %1, %int1 : !torch.vtensor<[12,24],f32>, !torch.vtensor<[1],f32>, !torch.int -> !torch.vtensor<[12,24],f32>
    %3 = torch.aten.relu %2 : !torch.vtensor<[12,24],f32> -> !torch.vtensor<[12,24],f32>
    %4 = torch.aten.mm %3, %arg2 : !torch.vtensor<[12,24],f32>, !torch.vtensor<[24,10],f32> -> !torch.vtensor<[12,10],f32>
    return %4 : !torch.vtensor<[12,10],f32>
  }
}
