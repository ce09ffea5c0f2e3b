// RUN: mipsc opt %s -p decompose-torch | filecheck %s

// An 8-bit integer product is computed in int32 (dtype 3), and wrapped back to its own type
// (int8: 1, uint8: 0); a float product is left alone.
// CHECK-LABEL: func.func @int8
// CHECK:         %[[I32:.*]] = torch.constant.int 3
// CHECK:         %[[A:.*]] = torch.prims.convert_element_type %arg0, %[[I32]] : !torch.vtensor<[7,17],si8>, !torch.int -> !torch.vtensor<[7,17],si32>
// CHECK:         %[[B:.*]] = torch.prims.convert_element_type %arg1, %{{.*}} : !torch.vtensor<[17,13],si8>, !torch.int -> !torch.vtensor<[17,13],si32>
// CHECK:         %[[P:.*]] = torch.aten.mm %[[A]], %[[B]] : !torch.vtensor<[7,17],si32>, !torch.vtensor<[17,13],si32> -> !torch.vtensor<[7,13],si32>
// CHECK:         %[[I8:.*]] = torch.constant.int 1
// CHECK:         %[[R:.*]] = torch.prims.convert_element_type %[[P]], %[[I8]] : !torch.vtensor<[7,13],si32>, !torch.int -> !torch.vtensor<[7,13],si8>
// CHECK:         func.return %[[R]]
func.func @int8(%arg0: !torch.vtensor<[7,17],si8>, %arg1: !torch.vtensor<[17,13],si8>) -> !torch.vtensor<[7,13],si8> {
  %0 = torch.aten.mm %arg0, %arg1 : !torch.vtensor<[7,17],si8>, !torch.vtensor<[17,13],si8> -> !torch.vtensor<[7,13],si8>
  return %0 : !torch.vtensor<[7,13],si8>
}

// CHECK-LABEL: func.func @uint8_linear
// CHECK:         torch.aten.linear %{{.*}}, %{{.*}}, %{{.*}} : !torch.vtensor<[7,17],si32>, !torch.vtensor<[13,17],si32>, !torch.vtensor<[13],si32> -> !torch.vtensor<[7,13],si32>
// CHECK:         %[[U8:.*]] = torch.constant.int 0
// CHECK:         torch.prims.convert_element_type %{{.*}}, %[[U8]] : !torch.vtensor<[7,13],si32>, !torch.int -> !torch.vtensor<[7,13],ui8>
func.func @uint8_linear(%arg0: !torch.vtensor<[7,17],ui8>, %arg1: !torch.vtensor<[13,17],ui8>, %arg2: !torch.vtensor<[13],ui8>) -> !torch.vtensor<[7,13],ui8> {
  %0 = torch.aten.linear %arg0, %arg1, %arg2 : !torch.vtensor<[7,17],ui8>, !torch.vtensor<[13,17],ui8>, !torch.vtensor<[13],ui8> -> !torch.vtensor<[7,13],ui8>
  return %0 : !torch.vtensor<[7,13],ui8>
}

// CHECK-LABEL: func.func @float
// CHECK-NOT:     convert_element_type
// CHECK:         torch.aten.mm %arg0, %arg1 : !torch.vtensor<[7,17],f32>
func.func @float(%arg0: !torch.vtensor<[7,17],f32>, %arg1: !torch.vtensor<[17,13],f32>) -> !torch.vtensor<[7,13],f32> {
  %0 = torch.aten.mm %arg0, %arg1 : !torch.vtensor<[7,17],f32>, !torch.vtensor<[17,13],f32> -> !torch.vtensor<[7,13],f32>
  return %0 : !torch.vtensor<[7,13],f32>
}

// An 8-bit einsum is decomposed like a float one, and its product widened the same way.
// CHECK-LABEL: func.func @int8_einsum
// CHECK-NOT:     torch.aten.einsum %
// CHECK:         torch.aten.matmul %{{.*}}, %{{.*}} {{.*}}: !torch.vtensor<[2,5,33],si32>, !torch.vtensor<[2,33,7],si32> -> !torch.vtensor<[2,5,7],si32>
// CHECK:         torch.prims.convert_element_type %{{.*}}, %{{.*}} : !torch.vtensor<[2,5,7],si32>, !torch.int -> !torch.vtensor<[2,5,7],si8>
func.func @int8_einsum(%a: !torch.vtensor<[2,5,33],si8>, %b: !torch.vtensor<[2,33,7],si8>) -> !torch.vtensor<[2,5,7],si8> {
  %eq = torch.constant.str "bij,bjk->bik"
  %none = torch.constant.none
  %ops = torch.prim.ListConstruct %a, %b : (!torch.vtensor<[2,5,33],si8>, !torch.vtensor<[2,33,7],si8>) -> !torch.list<vtensor>
  %r = torch.aten.einsum %eq, %ops, %none : !torch.str, !torch.list<vtensor>, !torch.none -> !torch.vtensor<[2,5,7],si8>
  return %r : !torch.vtensor<[2,5,7],si8>
}
