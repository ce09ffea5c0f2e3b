module @module {
  func.func @main(%arg0: !torch.vtensor<[11],f32>, %arg1: !torch.vtensor<[9,6],f32>, %arg2: !torch.vtensor<[6,11],f32>) -> !torch.vtensor<[9,11],f32> attributes {torch.assume_strict_symbolic_shapes} {
    %0 = torch.aten.mm %arg1, %arg2 : !torch.vtensor<[9,6],f32>, !torch.vtensor<[6,11],f32> -> !torch.vtensor<[9,11],f32>
    %float2.000000e00 = torch.constant.float 2.000000e+00
    %1 = torch.aten.mul.Scalar %0, %float2.000000e00 : !torch.vtensor<[9,11],f32>, !torch.float -> !torch.vtensor<[9,11],f32>
    %float5.000000e-01 = torch.constant.float 5.000000e-01
    %2 = torch.aten.mul.Scalar %arg0, %float5.000000e-01 : !torch.vtensor<[11],f32>, !torch.float -> !torch.vtensor<[11],f32>
    %int1 = torch.constant.int 1
    %3 = torch.aten.add.Tensor %1, %2, %int1 : !torch.vtensor<[9,11],f32>, !torch.vtensor<[11],f32>, !torch.int -> !torch.vtensor<[9,11],f32>
    return %3 : !torch.vtensor<[9,11],f32>
  }
}
