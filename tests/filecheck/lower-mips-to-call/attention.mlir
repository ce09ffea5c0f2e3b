// RUN: mipsc opt %s -p "lower-mips-to-call{kernel_link=plugin}" --remarks 2>&1 | filecheck %s
// RUN: mipsc opt %s -p "lower-mips-to-call{kernel_link=embedded}" | filecheck %s --check-prefix=EMBEDDED

// CHECK: attention.mlir:12:3: remark: [lower-mips-to-call] mips.attention calls mips_attention_f32 per tile of 40 query rows

// One dispatch over batch·H·⌈L/tile⌉ tiles (2·4·⌈40/40⌉ = 8: the tile is 64 rows at most, the
// query's 40 here); each tile calls the kernel on its query rows [i0, i0 + 40)
// of head h (q at z·L·E + i0·E), with key/value head h / 2 (4 query heads on 2 key/value
// heads: k at (b·Hkv + h/2)·S·E), the [L, S] mask broadcast over batch and heads (stride 0),
// read from row i0, and causal_row0 = i0.
func.func @gqa(%q: tensor<2x4x40x8xf32>, %k: tensor<2x2x50x8xf32>, %v: tensor<2x2x50x6xf32>, %m: tensor<40x50xf32>) -> tensor<2x4x40x6xf32> {
  %r = mips.attention %q, %k, %v mask(%m : tensor<40x50xf32>) causal scale(0.125 : f64) : tensor<2x4x40x8xf32>, tensor<2x2x50x8xf32>, tensor<2x2x50x6xf32> -> tensor<2x4x40x6xf32>
  return %r : tensor<2x4x40x6xf32>
}
// CHECK:      stream.executable private @mips_exe_0 {
// CHECK:        stream.executable.export public @mips_attention_0 workgroups(%[[COUNT:.*]]: index)
// CHECK:        func.func private @mips_attention_f32(memref<f32>, index, index, index, memref<f32>, index, index, index, memref<f32>, index, index, index, memref<f32>, index, index, index, memref<f32>, index, index, index, index, index, index, index, index, index, f32) -> () attributes {llvm.bareptr = true}
// CHECK:        func.func @mips_attention_0(%{{.*}}: !stream.binding, %{{.*}}: !stream.binding, %{{.*}}: !stream.binding, %{{.*}}: !stream.binding, %{{.*}}: !stream.binding) {
// CHECK:          stream.binding.subspan %{{.*}} : !stream.binding -> memref<2560xf32, strided<[1], offset: ?>>
// CHECK:          %[[TILES:.*]] = arith.constant 8 : index
// CHECK-NEXT:     scf.for %[[T:.*]] = %{{.*}} to %[[TILES]] step %{{.*}} {
// CHECK:            %[[ROWS:.*]] = arith.minsi
// CHECK:            %[[SCALE:.*]] = arith.constant 1.250000e-01 : f32
// CHECK-NEXT:       func.call @mips_attention_f32({{.*}}, %[[ROWS]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[I0:.*]], %[[SCALE]])
// CHECK:      %[[N:.*]] = arith.constant 8 : index
// CHECK-NEXT: %r = flow.dispatch @mips_exe_0::@mips_attention_0[%[[N]]](%q, %k, %v, %m) : (tensor<2x4x40x8xf32>, tensor<2x2x50x8xf32>, tensor<2x2x50x6xf32>, tensor<40x50xf32>) -> tensor<2x4x40x6xf32>

// Embedded: the object's entry point with the workgroup-local workspace.
// EMBEDDED:      stream.executable private @mips_exe_0 attributes {hal.executable.objects
// EMBEDDED:        func.func private @mips_attention_f32_embedded({{.*}}, f32, memref<{{[0-9]+}}xi8, #iree_codegen.workgroup_local>, index) -> i32 attributes {llvm.bareptr = true, hal.import.static}
// EMBEDDED:        %[[WS:.*]] = memref.alloc() : memref<{{[0-9]+}}xi8, #iree_codegen.workgroup_local>
// EMBEDDED:        func.call @mips_attention_f32_embedded({{.*}}, %[[WS]], %{{.*}})
