// RUN: mipsc opt %s -p "lower-mips-to-call{kernel_link=plugin}" | filecheck %s
// RUN: mipsc opt %s -p "lower-mips-to-call{tile_m=16 tile_n=32 kernel_link=plugin}" | filecheck %s --check-prefix=TILES

// A zero-init matmul: the kernel writes C = A·B into a fresh result, the fill disappears.
func.func @mm(%a: tensor<37x19xf32>, %b: tensor<19x23xf32>) -> tensor<37x23xf32> {
  %e = tensor.empty() : tensor<37x23xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<37x23xf32>) -> tensor<37x23xf32>
  %r = mips.matmul ins(%a, %b : tensor<37x19xf32>, tensor<19x23xf32>) outs(%f : tensor<37x23xf32>) -> tensor<37x23xf32>
  return %r : tensor<37x23xf32>
}

// The executable: the tiles are chosen for the shape (a 37x23 product is small: one 48x32 tile:
// rows in multiples of 12, columns of 32). The grid is 1-D, at most 65535 workgroups (IREE keeps
// workgroup ids y and z in 16 bits), and each workgroup loops over tiles id, id + count, ...
// CHECK:      stream.executable private @mips_exe_0 {
// CHECK-NEXT:   stream.executable.export public @mips_matmul_0 workgroups(%[[M:.*]]: index, %[[N:.*]]: index, %{{.*}}: index, %[[BATCH:.*]]: index) -> (index, index, index) {
// CHECK-NEXT:     %[[TM:.*]] = arith.constant 48 : index
// CHECK-NEXT:     %[[TN:.*]] = arith.constant 32 : index
// CHECK-NEXT:     %[[TILESM:.*]] = arith.ceildivsi %[[M]], %[[TM]] : index
// CHECK-NEXT:     %[[TILESN:.*]] = arith.ceildivsi %[[N]], %[[TN]] : index
// CHECK-NEXT:     %[[PER:.*]] = arith.muli %[[TILESN]], %[[TILESM]] : index
// CHECK-NEXT:     %[[ALL:.*]] = arith.muli %[[PER]], %[[BATCH]] : index
// CHECK-NEXT:     %[[CAP:.*]] = arith.constant 65535 : index
// CHECK-NEXT:     %[[X:.*]] = arith.minui %[[ALL]], %[[CAP]] : index
// CHECK-NEXT:     %[[ONE:.*]] = arith.constant 1 : index
// CHECK-NEXT:     stream.return %[[X]], %[[ONE]], %[[ONE]] : index, index, index
// CHECK:        builtin.module {
// The kernel is declared with the memref ABI: a bare base pointer, offset, 2 strides per operand,
// then m, n, k and the accumulate flag.
// CHECK-NEXT:     func.func private @mips_matmul_f32(memref<f32>, index, index, index, memref<f32>, index, index, index, memref<f32>, index, index, index, index, index, index, index) -> () attributes {llvm.bareptr = true}
// CHECK-NEXT:     func.func @mips_matmul_0(%[[BA:.*]]: !stream.binding, %[[BB:.*]]: !stream.binding, %[[BC:.*]]: !stream.binding, %[[EM:.*]]: index, %[[EN:.*]]: index, %[[EK:.*]]: index, %[[EB:.*]]: index, %[[EKB:.*]]: index, %[[EBB:.*]]: index, %[[EMI:.*]]: index, %[[ENI:.*]]: index, %[[EBI:.*]]: index) {
// Bindings are viewed with a dynamic offset, so IREE passes packed buffers' real offsets.
// CHECK:            %[[A:.*]] = stream.binding.subspan %[[BA]][%{{.*}}] : !stream.binding -> memref<37x19xf32, strided<[19, 1], offset: ?>>
// CHECK-NEXT:       %[[B:.*]] = stream.binding.subspan %[[BB]][%{{.*}}] : !stream.binding -> memref<19x23xf32, strided<[23, 1], offset: ?>>
// CHECK-NEXT:       %[[C:.*]] = stream.binding.subspan %[[BC]][%{{.*}}] : !stream.binding -> memref<37x23xf32, strided<[23, 1], offset: ?>>
// A K or batch mismatch, or an init of other sizes than the product's, makes k = -1, which
// the kernel rejects.
// CHECK-NEXT:       %[[KOK:.*]] = arith.cmpi eq, %[[EK]], %[[EKB]] : index
// CHECK-NEXT:       %[[BOK:.*]] = arith.cmpi eq, %[[EB]], %[[EBB]] : index
// CHECK-NEXT:       %[[OK1:.*]] = arith.andi %[[KOK]], %[[BOK]] : i1
// CHECK-NEXT:       %[[MOK:.*]] = arith.cmpi eq, %[[EM]], %[[EMI]] : index
// CHECK-NEXT:       %[[OK2:.*]] = arith.andi %[[OK1]], %[[MOK]] : i1
// CHECK-NEXT:       %[[NOK:.*]] = arith.cmpi eq, %[[EN]], %[[ENI]] : index
// CHECK-NEXT:       %[[OK3:.*]] = arith.andi %[[OK2]], %[[NOK]] : i1
// CHECK-NEXT:       %[[BIOK:.*]] = arith.cmpi eq, %[[EB]], %[[EBI]] : index
// CHECK-NEXT:       %[[OK:.*]] = arith.andi %[[OK3]], %[[BIOK]] : i1
// CHECK-NEXT:       %[[BAD:.*]] = arith.constant -1 : index
// CHECK-NEXT:       %[[K:.*]] = arith.select %[[OK]], %[[EK]], %[[BAD]] : index
// CHECK-NEXT:       %[[ETM:.*]] = arith.constant 48 : index
// CHECK-NEXT:       %[[ETN:.*]] = arith.constant 32 : index
// CHECK-NEXT:       %[[ETILESM:.*]] = arith.ceildivsi %[[EM]], %[[ETM]] : index
// CHECK-NEXT:       %[[ETILESN:.*]] = arith.ceildivsi %[[EN]], %[[ETN]] : index
// CHECK-NEXT:       %[[EPER:.*]] = arith.muli %[[ETILESN]], %[[ETILESM]] : index
// CHECK-NEXT:       %[[EALL:.*]] = arith.muli %[[EPER]], %[[EB]] : index
// CHECK-NEXT:       %[[WX:.*]] = stream.dispatch.workgroup.id[0] : index
// CHECK-NEXT:       %[[WC:.*]] = stream.dispatch.workgroup.count[0] : index
// CHECK-NEXT:       scf.for %[[T:.*]] = %[[WX]] to %[[EALL]] step %[[WC]] {
// Tile t: columns fastest, then rows, then batch (IREE's own order of x, y, z).
// CHECK-NEXT:         %[[COL:.*]] = arith.remui %[[T]], %[[ETILESN]] : index
// CHECK-NEXT:         %[[RB:.*]] = arith.divui %[[T]], %[[ETILESN]] : index
// CHECK-NEXT:         %[[ROW:.*]] = arith.remui %[[RB]], %[[ETILESM]] : index
// CHECK-NEXT:         arith.divui %[[RB]], %[[ETILESM]] : index
// CHECK-NEXT:         %[[I0:.*]] = arith.muli %[[ROW]], %[[ETM]] : index
// CHECK-NEXT:         %[[J0:.*]] = arith.muli %[[COL]], %[[ETN]] : index
// CHECK-NEXT:         %[[RESTM:.*]] = arith.subi %[[EM]], %[[I0]] : index
// CHECK-NEXT:         %[[TILEM:.*]] = arith.minsi %[[ETM]], %[[RESTM]] : index
// CHECK-NEXT:         %[[RESTN:.*]] = arith.subi %[[EN]], %[[J0]] : index
// CHECK-NEXT:         %[[TILEN:.*]] = arith.minsi %[[ETN]], %[[RESTN]] : index
// CHECK-NEXT:         %[[AT:.*]] = memref.subview %[[A]][%[[I0]], 0] [%[[TILEM]], %[[EK]]] [1, 1] : memref<37x19xf32, strided<[19, 1], offset: ?>> to memref<?x?xf32, strided<[19, 1], offset: ?>>
// CHECK-NEXT:         %[[ABASE:.*]], %[[AOFF:.*]], %{{.*}}, %{{.*}}, %[[AS0:.*]], %[[AS1:.*]] = memref.extract_strided_metadata %[[AT]]
// CHECK-NEXT:         %[[BT:.*]] = memref.subview %[[B]][0, %[[J0]]] [%[[EK]], %[[TILEN]]] [1, 1]
// CHECK-NEXT:         %[[BBASE:.*]], %[[BOFF:.*]], %{{.*}}, %{{.*}}, %[[BS0:.*]], %[[BS1:.*]] = memref.extract_strided_metadata %[[BT]]
// CHECK-NEXT:         %[[CT:.*]] = memref.subview %[[C]][%[[I0]], %[[J0]]] [%[[TILEM]], %[[TILEN]]] [1, 1]
// CHECK-NEXT:         %[[CBASE:.*]], %[[COFF:.*]], %{{.*}}, %{{.*}}, %[[CS0:.*]], %[[CS1:.*]] = memref.extract_strided_metadata %[[CT]]
// CHECK-NEXT:         %[[ACC:.*]] = arith.constant 0 : index
// CHECK-NEXT:         func.call @mips_matmul_f32(%[[ABASE]], %[[AOFF]], %[[AS0]], %[[AS1]], %[[BBASE]], %[[BOFF]], %[[BS0]], %[[BS1]], %[[CBASE]], %[[COFF]], %[[CS0]], %[[CS1]], %[[TILEM]], %[[TILEN]], %[[K]], %[[ACC]])
// CHECK-NEXT:       }
// CHECK-NEXT:       func.return

// The host: one dispatch over the workload (M, N, K, batch), no fill left.
// CHECK-LABEL: func.func @mm(
// CHECK-NOT:     linalg.fill
// CHECK:         %[[HM:.*]] = arith.constant 37 : index
// CHECK-NEXT:    %[[HK:.*]] = arith.constant 19 : index
// CHECK-NEXT:    %[[HKB:.*]] = arith.constant 19 : index
// CHECK-NEXT:    %[[HN:.*]] = arith.constant 23 : index
// CHECK-NEXT:    %[[ONE:.*]] = arith.constant 1 : index
// CHECK-NEXT:    %[[R:.*]] = flow.dispatch @mips_exe_0::@mips_matmul_0[%[[HM]], %[[HN]], %[[HK]], %[[ONE]]](%{{.*}}, %{{.*}}, %[[HM]], %[[HN]], %[[HK]], %[[ONE]], %[[HKB]], %[[ONE]], %[[HM]], %[[HN]], %[[ONE]]) : (tensor<37x19xf32>, tensor<19x23xf32>, index, index, index, index, index, index, index, index, index) -> tensor<37x23xf32>
// CHECK-NEXT:    func.return %[[R]] : tensor<37x23xf32>

// TILES:      arith.constant 16 : index
// TILES-NEXT: arith.constant 32 : index
