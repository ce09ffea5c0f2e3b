// From tests/data/mlp_external.mlir.
module @module {
  util.global private @__auto.0.weight = #flow.parameter.named<"model"::"0.weight"> : tensor<64x32xf32>
  util.global private @__auto.0.bias = #flow.parameter.named<"model"::"0.bias"> : tensor<64xf32>
  util.global private @__auto.2.weight = #flow.parameter.named<"model"::"2.weight"> : tensor<16x64xf32>
  util.global private @__auto.2.bias = #flow.parameter.named<"model"::"2.bias"> : tensor<16xf32>
  func.func @main(%arg0: !torch.vtensor<[8,32],f32>) -> !torch.vtensor<[8,16],f32> attributes {torch.assume_strict_symbolic_shapes} {
    %__auto.0.weight = util.global.load @__auto.0.weight : tensor<64x32xf32>
    %0 = torch_c.from_builtin_tensor %__auto.0.weight : tensor<64x32xf32> -> !torch.vtensor<[64,32],f32>
    %__auto.0.bias = util.global.load @__auto.0.bias : tensor<64xf32>
    %1 = torch_c.from_builtin_tensor %__auto.0.bias : tensor<64xf32> -> !torch.vtensor<[64],f32>
    %2 = torch.aten.linear %arg0, %0, %1 : !torch.vtensor<[8,32],f32>, !torch.vtensor<[64,32],f32>, !torch.vtensor<[64],f32> -> !torch.vtensor<[8,64],f32>
    %3 = torch.aten.relu %2 : !torch.vtensor<[8,64],f32> -> !torch.vtensor<[8,64],f32>
    %__auto.2.weight = util.global.load @__auto.2.weight : tensor<16x64xf32>
    %4 = torch_c.from_builtin_tensor %__auto.2.weight : tensor<16x64xf32> -> !torch.vtensor<[16,64],f32>
    %__auto.2.bias = util.global.load @__auto.2.bias : tensor<16xf32>
    %5 = torch_c.from_builtin_tensor %__auto.2.bias : tensor<16xf32> -> !torch.vtensor<[16],f32>
    %6 = torch.aten.linear %3, %4, %5 : !torch.vtensor<[8,64],f32>, !torch.vtensor<[16,64],f32>, !torch.vtensor<[16],f32> -> !torch.vtensor<[8,16],f32>
    return %6 : !torch.vtensor<[8,16],f32>
  }
}
