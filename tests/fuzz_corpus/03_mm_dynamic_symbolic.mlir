// From tests/data/mm_dynamic_symbolic.mlir.
module @module {
  func.func @main(%arg0: !torch.vtensor<[?,?],f32>, %arg1: !torch.vtensor<[?,?],f32>) -> !torch.vtensor<[?,?],f32> attributes {torch.assume_strict_symbolic_shapes} {
    %0 = torch.symbolic_int "s6" {min_val = 2, max_val = 4096} : !torch.int
    %1 = torch.symbolic_int "s11" {min_val = 2, max_val = 4096} : !torch.int
    %2 = torch.symbolic_int "s96" {min_val = 2, max_val = 4096} : !torch.int
    torch.bind_symbolic_shape %arg0, [%1, %0], affine_map<()[s0, s1] -> (s1, s0)> : !torch.vtensor<[?,?],f32>
    torch.bind_symbolic_shape %arg1, [%1, %2], affine_map<()[s0, s1] -> (s0, s1)> : !torch.vtensor<[?,?],f32>
    %3 = torch.aten.mm %arg0, %arg1 : !torch.vtensor<[?,?],f32>, !torch.vtensor<[?,?],f32> -> !torch.vtensor<[?,?],f32>
    torch.bind_symbolic_shape %3, [%0, %2], affine_map<()[s0, s1] -> (s0, s1)> : !torch.vtensor<[?,?],f32>
    return %3 : !torch.vtensor<[?,?],f32>
  }
}
