// RUN: mipsc opt %s -p check-input-dims | filecheck %s

// Two inputs given one dynamic dim name, and one a derived dim (2 * s0): the second and third
// are checked against the first at the entry; the bindings are gone.
// CHECK-LABEL: func.func @main
// CHECK-NOT:     torch.bind_symbolic_shape
// CHECK-NOT:     torch.symbolic_int
// CHECK:         %[[D:.*]] = torch_c.to_builtin_tensor %arg0
// CHECK:         %[[DD:.*]] = tensor.dim %[[D]], %{{.*}}
// CHECK:         %[[A:.*]] = torch_c.to_builtin_tensor %arg1
// CHECK:         %[[AD:.*]] = tensor.dim %[[A]], %{{.*}}
// CHECK:         %[[EQ:.*]] = arith.cmpi eq, %[[AD]], %[[DD]]
// CHECK:         cf.assert %[[EQ]], "dynamic dims exported as one size differ at run time: dim 0 of %arg1 must equal dim 0 of %arg0"
// CHECK:         arith.muli
// CHECK:         cf.assert %{{.*}}, "dynamic dims exported as one size differ at run time: dim 1 of %arg2 must equal (dim 0 of %arg0 * 2)"
// CHECK-NOT:     cf.assert
// CHECK:         torch.aten.mul.Tensor
func.func @main(%arg0: !torch.vtensor<[?,8],f32>, %arg1: !torch.vtensor<[?,8],f32>, %arg2: !torch.vtensor<[3,?],f32>) -> !torch.vtensor<[?,8],f32> attributes {torch.assume_strict_symbolic_shapes} {
  %0 = torch.symbolic_int "s0" {min_val = 0, max_val = 9223372036854775807} : !torch.int
  torch.bind_symbolic_shape %arg0, [%0], affine_map<()[s0] -> (s0, 8)> : !torch.vtensor<[?,8],f32>
  torch.bind_symbolic_shape %arg1, [%0], affine_map<()[s0] -> (s0, 8)> : !torch.vtensor<[?,8],f32>
  torch.bind_symbolic_shape %arg2, [%0], affine_map<()[s0] -> (3, s0 * 2)> : !torch.vtensor<[3,?],f32>
  %1 = torch.aten.mul.Tensor %arg0, %arg1 : !torch.vtensor<[?,8],f32>, !torch.vtensor<[?,8],f32> -> !torch.vtensor<[?,8],f32>
  torch.bind_symbolic_shape %1, [%0], affine_map<()[s0] -> (s0, 8)> : !torch.vtensor<[?,8],f32>
  return %1 : !torch.vtensor<[?,8],f32>
}

// One input per symbol: nothing to check, the bindings are erased.
// CHECK-LABEL: func.func @independent
// CHECK-NOT:     cf.assert
// CHECK-NOT:     torch.bind_symbolic_shape
// CHECK:         torch.aten.mm
func.func @independent(%arg0: !torch.vtensor<[?,8],f32>, %arg1: !torch.vtensor<[8,?],f32>) -> !torch.vtensor<[?,?],f32> {
  %0 = torch.symbolic_int "s0" {min_val = 0, max_val = 9223372036854775807} : !torch.int
  %1 = torch.symbolic_int "s1" {min_val = 0, max_val = 9223372036854775807} : !torch.int
  torch.bind_symbolic_shape %arg0, [%0], affine_map<()[s0] -> (s0, 8)> : !torch.vtensor<[?,8],f32>
  torch.bind_symbolic_shape %arg1, [%1], affine_map<()[s0] -> (8, s0)> : !torch.vtensor<[8,?],f32>
  %2 = torch.aten.mm %arg0, %arg1 : !torch.vtensor<[?,8],f32>, !torch.vtensor<[8,?],f32> -> !torch.vtensor<[?,?],f32>
  return %2 : !torch.vtensor<[?,?],f32>
}
