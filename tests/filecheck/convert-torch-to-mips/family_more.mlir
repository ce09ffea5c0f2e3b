// RUN: mipsc opt %s -p convert-torch-to-mips | filecheck %s

// One case per pattern of the family not covered by family.mlir.

func.func @bmm(%a: !torch.vtensor<[4,5,6],f32>, %b: !torch.vtensor<[4,6,3],f32>) -> !torch.vtensor<[4,5,3],f32> {
  %0 = torch.aten.bmm %a, %b : !torch.vtensor<[4,5,6],f32>, !torch.vtensor<[4,6,3],f32> -> !torch.vtensor<[4,5,3],f32>
  return %0 : !torch.vtensor<[4,5,3],f32>
}
func.func @mv(%a: !torch.vtensor<[9,13],f16>, %v: !torch.vtensor<[13],f16>) -> !torch.vtensor<[9],f16> {
  %0 = torch.aten.mv %a, %v : !torch.vtensor<[9,13],f16>, !torch.vtensor<[13],f16> -> !torch.vtensor<[9],f16>
  return %0 : !torch.vtensor<[9],f16>
}
func.func @matmul_two_batch_dims(%a: !torch.vtensor<[2,3,5,6],f32>, %b: !torch.vtensor<[2,3,6,4],f32>) -> !torch.vtensor<[2,3,5,4],f32> {
  %0 = torch.aten.matmul %a, %b : !torch.vtensor<[2,3,5,6],f32>, !torch.vtensor<[2,3,6,4],f32> -> !torch.vtensor<[2,3,5,4],f32>
  return %0 : !torch.vtensor<[2,3,5,4],f32>
}
func.func @linear_no_bias(%x: !torch.vtensor<[8,16],bf16>, %w: !torch.vtensor<[10,16],bf16>) -> !torch.vtensor<[8,10],bf16> {
  %none = torch.constant.none
  %0 = torch.aten.linear %x, %w, %none : !torch.vtensor<[8,16],bf16>, !torch.vtensor<[10,16],bf16>, !torch.none -> !torch.vtensor<[8,10],bf16>
  return %0 : !torch.vtensor<[8,10],bf16>
}
func.func @baddbmm(%i: !torch.vtensor<[3,5,4],f32>, %a: !torch.vtensor<[3,5,6],f32>, %b: !torch.vtensor<[3,6,4],f32>) -> !torch.vtensor<[3,5,4],f32> {
  %one = torch.constant.int 1
  %0 = torch.aten.baddbmm %i, %a, %b, %one, %one : !torch.vtensor<[3,5,4],f32>, !torch.vtensor<[3,5,6],f32>, !torch.vtensor<[3,6,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[3,5,4],f32>
  return %0 : !torch.vtensor<[3,5,4],f32>
}
func.func @addbmm(%i: !torch.vtensor<[5,4],f32>, %a: !torch.vtensor<[3,5,6],f32>, %b: !torch.vtensor<[3,6,4],f32>) -> !torch.vtensor<[5,4],f32> {
  %one = torch.constant.int 1
  %0 = torch.aten.addbmm %i, %a, %b, %one, %one : !torch.vtensor<[5,4],f32>, !torch.vtensor<[3,5,6],f32>, !torch.vtensor<[3,6,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[5,4],f32>
  return %0 : !torch.vtensor<[5,4],f32>
}
func.func @addmm_beta_zero(%i: !torch.vtensor<[5,4],f32>, %a: !torch.vtensor<[5,6],f32>, %b: !torch.vtensor<[6,4],f32>) -> !torch.vtensor<[5,4],f32> {
  %zero = torch.constant.int 0
  %two = torch.constant.float 2.0
  %0 = torch.aten.addmm %i, %a, %b, %zero, %two : !torch.vtensor<[5,4],f32>, !torch.vtensor<[5,6],f32>, !torch.vtensor<[6,4],f32>, !torch.int, !torch.float -> !torch.vtensor<[5,4],f32>
  return %0 : !torch.vtensor<[5,4],f32>
}

// bmm: one batch_matmul over the batch, a zero init (the lowering drops it).
// CHECK-LABEL: func.func @bmm(
// CHECK:         %[[F:.*]] = linalg.fill
// CHECK-NEXT:    %[[P:.*]] = mips.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<4x5x6xf32>, tensor<4x6x3xf32>) outs(%[[F]] : tensor<4x5x3xf32>) -> tensor<4x5x3xf32>
// CHECK-NEXT:    torch_c.from_builtin_tensor %[[P]] : tensor<4x5x3xf32> -> !torch.vtensor<[4,5,3],f32>

// mv (f16): the vector is a [K, 1] matrix, the result's unit dim dropped again.
// CHECK-LABEL: func.func @mv(
// CHECK:         %[[V:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0 : i64, 1 : i64]] output_shape [13, 1] : tensor<13xf16> into tensor<13x1xf16>
// CHECK:         %[[P:.*]] = mips.matmul ins(%{{.*}}, %[[V]] : tensor<9x13xf16>, tensor<13x1xf16>) outs(%{{.*}} : tensor<9x1xf16>) -> tensor<9x1xf16>
// CHECK-NEXT:    tensor.collapse_shape %[[P]] {{\[\[}}0 : i64, 1 : i64]] : tensor<9x1xf16> into tensor<9xf16>

// matmul with two batch dims: flattened into one for the batch_matmul, unflattened after.
// CHECK-LABEL: func.func @matmul_two_batch_dims(
// CHECK:         %[[A:.*]] = tensor.collapse_shape %{{.*}} {{\[\[}}0 : i64, 1 : i64], [2 : i64], [3 : i64]] : tensor<2x3x5x6xf32> into tensor<6x5x6xf32>
// CHECK-NEXT:    %[[B:.*]] = tensor.collapse_shape %{{.*}} {{\[\[}}0 : i64, 1 : i64], [2 : i64], [3 : i64]] : tensor<2x3x6x4xf32> into tensor<6x6x4xf32>
// CHECK:         %[[P:.*]] = mips.batch_matmul ins(%[[A]], %[[B]] : tensor<6x5x6xf32>, tensor<6x6x4xf32>) outs(%{{.*}} : tensor<6x5x4xf32>) -> tensor<6x5x4xf32>
// CHECK-NEXT:    tensor.expand_shape %[[P]] {{\[\[}}0 : i64, 1 : i64], [2 : i64], [3 : i64]] output_shape [2, 3, 5, 4] : tensor<6x5x4xf32> into tensor<2x3x5x4xf32>

// linear without bias (bf16): the weight read transposed, a zero init.
// CHECK-LABEL: func.func @linear_no_bias(
// CHECK:         %[[Z:.*]] = arith.constant 0.000000e+00 : bf16
// CHECK-NEXT:    %[[F:.*]] = linalg.fill ins(%[[Z]] : bf16)
// CHECK-NEXT:    mips.matmul transpose_rhs ins(%{{.*}}, %{{.*}} : tensor<8x16xbf16>, tensor<10x16xbf16>) outs(%[[F]] : tensor<8x10xbf16>) -> tensor<8x10xbf16>

// baddbmm with alpha = beta = 1: the input, of the result's shape, is itself the init the
// kernel accumulates into (no copy).
// CHECK-LABEL: func.func @baddbmm(
// CHECK:         %[[I:.*]] = torch_c.to_builtin_tensor %i
// CHECK-NOT:     linalg.broadcast
// CHECK-NEXT:    mips.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<3x5x6xf32>, tensor<3x6x4xf32>) outs(%[[I]] : tensor<3x5x4xf32>)

// addbmm: one 2-D product over the concatenated K ([5, 3·6] · [3·6, 4]).
// CHECK-LABEL: func.func @addbmm(
// CHECK:         linalg.transpose ins(%{{.*}}:tensor<3x5x6xf32>) outs(%{{.*}}:tensor<5x3x6xf32>) permutation = [1, 0, 2]
// CHECK-NEXT:    %[[A:.*]] = tensor.collapse_shape %{{.*}} {{\[\[}}0 : i64], [1 : i64, 2 : i64]] : tensor<5x3x6xf32> into tensor<5x18xf32>
// CHECK-NEXT:    %[[B:.*]] = tensor.collapse_shape %{{.*}} {{\[\[}}0 : i64, 1 : i64], [2 : i64]] : tensor<3x6x4xf32> into tensor<18x4xf32>
// CHECK-NEXT:    mips.matmul ins(%[[A]], %[[B]] : tensor<5x18xf32>, tensor<18x4xf32>)

// addmm with beta = 0 ignores the input (torch ignores its NaN and inf); alpha scales.
// CHECK-LABEL: func.func @addmm_beta_zero(
// CHECK-NOT:     torch_c.to_builtin_tensor %i
// CHECK:         %[[F:.*]] = linalg.fill
// CHECK-NEXT:    %[[P:.*]] = mips.matmul ins(%{{.*}}, %{{.*}} : tensor<5x6xf32>, tensor<6x4xf32>) outs(%[[F]] : tensor<5x4xf32>)
// CHECK-NEXT:    %[[T:.*]] = torch_c.from_builtin_tensor %[[P]]
// CHECK-NEXT:    torch.aten.mul.Scalar %[[T]], %two
