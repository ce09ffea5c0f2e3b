// RUN: mipsc opt %s -p pack-weights | filecheck %s

// An inline literal (torch.vtensor.literal, seen through torch_c) becomes a global of its own,
// then is packed like one; a parameter global (#flow.parameter.named) is packed in place.
// bf16 K = 5 is packed with K rounded up to even and N = 40 to a whole panel:
// packed_size(5, 40) = 6 * 64.
util.global private @p = #flow.parameter.named<"model"::"w"> : tensor<5x40xbf16>
func.func @main(%a: tensor<3x5xbf16>, %c: tensor<3x40xbf16>) -> tensor<3x40xbf16> {
  %l = torch.vtensor.literal(dense<1.0> : tensor<5x40xbf16>) : !torch.vtensor<[5,40],bf16>
  %lb = torch_c.to_builtin_tensor %l : !torch.vtensor<[5,40],bf16> -> tensor<5x40xbf16>
  %r = mips.matmul ins(%a, %lb : tensor<3x5xbf16>, tensor<5x40xbf16>) outs(%c : tensor<3x40xbf16>) -> tensor<3x40xbf16>
  %p = util.global.load @p : tensor<5x40xbf16>
  %s = mips.matmul ins(%a, %p : tensor<3x5xbf16>, tensor<5x40xbf16>) outs(%r : tensor<3x40xbf16>) -> tensor<3x40xbf16>
  return %s : tensor<3x40xbf16>
}

// Every weight is packed in one initializer, after the globals it loads and stores.
// CHECK:      util.global private @p = #flow.parameter.named<"model"::"w"> : tensor<5x40xbf16>
// CHECK-NEXT: util.global private @__mipsc_weight = dense<1.000000e+00> : tensor<5x40xbf16>
// CHECK-NEXT: util.global private @__mipsc_weight.packed : tensor<384xbf16>
// CHECK-NEXT: util.global private @p.packed : tensor<384xbf16>
// CHECK-NEXT: util.initializer {
// CHECK-NEXT:   %{{.*}} = util.global.load @__mipsc_weight : tensor<5x40xbf16>
// CHECK-NEXT:   %{{.*}} = util.optimization_barrier
// CHECK-NEXT:   %{{.*}} = mips.pack_rhs %{{.*}} : tensor<5x40xbf16> -> tensor<384xbf16>
// CHECK-NEXT:   util.global.store %{{.*}}, @__mipsc_weight.packed : tensor<384xbf16>
// CHECK-NEXT:   %{{.*}} = util.global.load @p : tensor<5x40xbf16>
// CHECK-NEXT:   %{{.*}} = util.optimization_barrier
// CHECK-NEXT:   %{{.*}} = mips.pack_rhs %{{.*}} : tensor<5x40xbf16> -> tensor<384xbf16>
// CHECK-NEXT:   util.global.store %{{.*}}, @p.packed : tensor<384xbf16>
// CHECK-NEXT:   util.return
// CHECK-NEXT: }
// CHECK-NOT:  util.initializer
// CHECK:      func.func @main(
// CHECK:        util.global.load @__mipsc_weight.packed
// CHECK-NEXT:   mips.matmul packed_rhs
// CHECK:        util.global.load @p.packed
// CHECK-NEXT:   mips.matmul packed_rhs
