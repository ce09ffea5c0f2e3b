// RUN: mipsc opt %s -p "lower-mips-to-call{kernel_link=plugin}" | filecheck %s

// A B packed at load (pack-weights' output): the pack becomes a dispatch of mips_pack_b_f32 over
// column tiles of 256, each written at its panel's offset j0 * Kp; the matmul's tiles call
// mips_matmul_packed_f32 with B at the tile's panel, j0 * Kp, and strides (Kp, 32).
// K = 19 -> Kp = 20; N = 300 -> 320 columns: 6400 elements.
util.global private @w = dense<1.0> : tensor<300x19xf32>
util.global private @w.packedT : tensor<6400xf32>
util.initializer {
  %w = util.global.load @w : tensor<300x19xf32>
  %b = util.optimization_barrier %w : tensor<300x19xf32>
  %p = mips.pack_rhs transpose %b : tensor<300x19xf32> -> tensor<6400xf32>
  util.global.store %p, @w.packedT : tensor<6400xf32>
  util.return
}
func.func @main(%a: tensor<?x19xf32>, %c: tensor<?x300xf32>) -> tensor<?x300xf32> {
  %p = util.global.load @w.packedT : tensor<6400xf32>
  %r = mips.matmul packed_rhs ins(%a, %p : tensor<?x19xf32>, tensor<6400xf32>) outs(%c : tensor<?x300xf32>) -> tensor<?x300xf32>
  return %r : tensor<?x300xf32>
}

// Executables go to the module's top as they are made: the initializer's pack first
// (@mips_exe_0), then the matmul (@mips_exe_1), printed above it. The matmul's tiles of a
// dynamic M are 72 x 128 (128: a whole number of panels).
// CHECK:      stream.executable private @mips_exe_1 {
// CHECK:        %[[TM:.*]] = arith.constant 72 : index
// CHECK-NEXT:   %[[TN2:.*]] = arith.constant 128 : index
// CHECK:        func.func private @mips_matmul_packed_f32(
// CHECK:          %[[PB:.*]] = stream.binding.subspan %{{.*}}[%{{.*}}] : !stream.binding -> memref<6400xf32, strided<[1], offset: ?>>
// CHECK:            %[[KP2:.*]] = arith.constant 20 : index
// CHECK-NEXT:       %{{.*}}, %[[BOFF:.*]], %{{.*}}, %{{.*}} = memref.extract_strided_metadata %[[PB]]
// CHECK-NEXT:       %[[JOFF:.*]] = arith.muli %{{.*}}, %[[KP2]] : index
// CHECK-NEXT:       %[[TOFF:.*]] = arith.addi %[[BOFF]], %[[JOFF]] : index
// CHECK-NEXT:       %[[PANEL:.*]] = arith.constant 32 : index
// CHECK:            func.call @mips_matmul_packed_f32(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[TOFF]], %[[KP2]], %[[PANEL]],
// The pack: one call per 256 columns of B.
// CHECK:      stream.executable private @mips_exe_0 {
// CHECK:        func.func private @mips_pack_b_f32(memref<f32>, index, index, index, memref<f32>, index, index, index) -> () attributes {llvm.bareptr = true}
// CHECK-NEXT:   func.func @mips_pack_0(%[[BB:.*]]: !stream.binding, %[[BP:.*]]: !stream.binding) {
// CHECK:          %[[B:.*]] = stream.binding.subspan %[[BB]][%{{.*}}] : !stream.binding -> memref<300x19xf32, strided<[19, 1], offset: ?>>
// CHECK-NEXT:     %[[P:.*]] = stream.binding.subspan %[[BP]][%{{.*}}] : !stream.binding -> memref<6400xf32, strided<[1], offset: ?>>
// CHECK:          scf.for %[[T:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:       %[[TN:.*]] = arith.constant 256 : index
// CHECK-NEXT:       %[[J0:.*]] = arith.muli %[[T]], %[[TN]] : index
// CHECK:            %[[SUB:.*]] = memref.subview %[[B]][%[[J0]], 0] [%{{.*}}, %{{.*}}] [1, 1]
// CHECK:            %[[KP:.*]] = arith.constant 20 : index
// CHECK-NEXT:       %[[OFF:.*]] = arith.muli %[[J0]], %[[KP]] : index
// CHECK-NEXT:       %[[POFF:.*]] = arith.addi %{{.*}}, %[[OFF]] : index
// The transposed weight is read with swapped strides (B[q, j] at q * 1 + j * 19).
// CHECK-NEXT:       func.call @mips_pack_b_f32(%{{.*}}, %{{.*}}, %[[S1:.*]], %[[S0:.*]], %{{.*}}, %[[POFF]], %{{.*}}, %{{.*}})
// The initializer dispatches the pack once; @main only loads the packed global.
// CHECK:      util.initializer {
// CHECK:        %[[N:.*]] = arith.constant 300 : index
// CHECK-NEXT:   %[[PK:.*]] = flow.dispatch @mips_exe_0::@mips_pack_0[%[[N]]](%{{.*}}) : (tensor<300x19xf32>) -> tensor<6400xf32>
// CHECK-NEXT:   util.global.store %[[PK]], @w.packedT : tensor<6400xf32>
// CHECK:      func.func @main(
// CHECK:        flow.dispatch @mips_exe_1::@mips_matmul_1[
