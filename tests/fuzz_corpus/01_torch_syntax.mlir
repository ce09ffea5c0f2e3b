// From tests/filecheck/roundtrip/torch_syntax.mlir.
module @module attributes {torch.debug_module_name = "M"} {
  util.global private @__auto.w = dense_resource<__auto.w> : tensor<2x2xf32>
  util.global private mutable @state : tensor<2xf32>
  func.func @main(%arg0: !torch.vtensor<[4,?],f32>, %arg1: !torch.vtensor<[?,3],f32>) -> !torch.vtensor<[4,3],f32> attributes {torch.assume_strict_symbolic_shapes} {
    %0 = torch.symbolic_int "s0" {min_val = 2, max_val = 9223372036854775806} : !torch.int
    torch.bind_symbolic_shape %arg0, [%0], affine_map<()[s0] -> (4, s0)> : !torch.vtensor<[4,?],f32>
    %int1 = torch.constant.int 1
    %int-2 = torch.constant.int -2
    %float = torch.constant.float 1.000000e-05
    %inf = torch.constant.float 0x7FF0000000000000
    %true = torch.constant.bool true
    %none = torch.constant.none
    %str = torch.constant.str "tanh"
    %cpu = torch.constant.device "cpu"
    %num = torch.constant.number 2.5
    %w = util.global.load @__auto.w : tensor<2x2xf32>
    %lit = torch.vtensor.literal(dense<[1.0, 2.0]> : tensor<2xf32>) : !torch.vtensor<[2],f32>
    %l = torch.prim.ListConstruct %int1, %int-2 : (!torch.int, !torch.int) -> !torch.list<int>
    %1 = torch.aten.mm %arg0, %arg1 : !torch.vtensor<[4,?],f32>, !torch.vtensor<[?,3],f32> -> !torch.vtensor<[4,3],f32>
    %2 = torch.aten.relu %1 : !torch.vtensor<[4,3],f32> -> !torch.vtensor<[4,3],f32>
    %3 = torch.aten.view %2, %l : !torch.vtensor<[4,3],f32>, !torch.list<int> -> !torch.vtensor<[4,3],f32>
    %4 = torch.operator "aten.foo"(%3) {custom = 1 : i64} : (!torch.vtensor<[4,3],f32>) -> !torch.vtensor<[4,3],f32>
    %5 = torch_c.to_builtin_tensor %4 : !torch.vtensor<[4,3],f32> -> tensor<4x3xf32>
    %6 = torch_c.from_builtin_tensor %5 : tensor<4x3xf32> -> !torch.vtensor<[4,3],f32>
    %7 = torch.aten.add.Tensor %6, %6, %int1 : !torch.vtensor<[4,3],f32>, !torch.vtensor<[4,3],f32>, !torch.int -> !torch.vtensor<[4,3],f32>
    %u = torch.aten.zeros %l, %none, %none, %cpu, %none : !torch.list<int>, !torch.none, !torch.none, !torch.Device, !torch.none -> !torch.vtensor<*,f32>
    %opt = torch.derefine %none : !torch.none -> !torch.optional<list<int>>
    %vt = torch.derefine %u : !torch.vtensor<*,f32> -> !torch.vtensor
    %a, %b = torch.prim.ListUnpack %l : !torch.list<int> -> !torch.int, !torch.int
    %unk = torch.tensor_static_info_cast %7 : !torch.vtensor<[4,3],f32> to !torch.vtensor<[4,3],unk>
    return %7 : !torch.vtensor<[4,3],f32>
  }
}

{-#
  dialect_resources: {
    builtin: {
      __auto.w: "0x040000000000803F000000400000404000008040"
    }
  }
#-}
