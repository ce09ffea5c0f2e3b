// From mipsc opt -p lower-mips-to-call of a transposed, accumulating, dynamic mips.matmul.
builtin.module {
  stream.executable private @mips_exe_0 {
    stream.executable.export public @mips_matmul_0 workgroups(%0: index, %1: index, %2: index, %3: index) -> (index, index, index) {
      %4 = arith.constant 64 : index
      %5 = arith.constant 128 : index
      %6 = arith.ceildivsi %1, %5 : index
      %7 = arith.ceildivsi %0, %4 : index
      stream.return %6, %7, %3 : index, index, index
    }
    builtin.module {
      func.func private @mips_matmul_f16(memref<f16>, index, index, index, memref<f16>, index, index, index, memref<f16>, index, index, index, index, index, index, index) -> () attributes {llvm.bareptr = true}
      func.func @mips_matmul_0(%0: !stream.binding, %1: !stream.binding, %2: !stream.binding, %3: index, %4: index, %5: index, %6: index, %7: index, %8: index) {
        %9 = arith.constant 0 : index
        %10 = stream.binding.subspan %0[%9] : !stream.binding -> memref<?x?xf16, strided<[?, 1], offset: ?>>{%3, %5}
        %11 = stream.binding.subspan %1[%9] : !stream.binding -> memref<?x?xf16, strided<[?, 1], offset: ?>>{%4, %7}
        %12 = stream.binding.subspan %2[%9] : !stream.binding -> memref<?x?xf16, strided<[?, 1], offset: ?>>{%3, %4}
        %13 = stream.dispatch.workgroup.id[0] : index
        %14 = stream.dispatch.workgroup.id[1] : index
        %15 = stream.dispatch.workgroup.id[2] : index
        %16 = arith.constant 64 : index
        %17 = arith.constant 128 : index
        %18 = arith.muli %14, %16 : index
        %19 = arith.muli %13, %17 : index
        %20 = arith.subi %3, %18 : index
        %21 = arith.subi %4, %19 : index
        %22 = arith.minsi %16, %20 : index
        %23 = arith.minsi %17, %21 : index
        %24 = arith.cmpi eq, %5, %7 : index
        %25 = arith.cmpi eq, %6, %8 : index
        %26 = arith.andi %24, %25 : i1
        %27 = arith.constant -1 : index
        %28 = arith.select %26, %5, %27 : index
        %29 = memref.subview %10[%18, 0] [%22, %5] [1, 1] : memref<?x?xf16, strided<[?, 1], offset: ?>> to memref<?x?xf16, strided<[?, 1], offset: ?>>
        %30, %31, %32, %33, %34, %35 = memref.extract_strided_metadata %29 : memref<?x?xf16, strided<[?, 1], offset: ?>> -> memref<f16>, index, index, index, index, index
        %36 = memref.subview %11[%19, 0] [%23, %5] [1, 1] : memref<?x?xf16, strided<[?, 1], offset: ?>> to memref<?x?xf16, strided<[?, 1], offset: ?>>
        %37, %38, %39, %40, %41, %42 = memref.extract_strided_metadata %36 : memref<?x?xf16, strided<[?, 1], offset: ?>> -> memref<f16>, index, index, index, index, index
        %43 = memref.subview %12[%18, %19] [%22, %23] [1, 1] : memref<?x?xf16, strided<[?, 1], offset: ?>> to memref<?x?xf16, strided<[?, 1], offset: ?>>
        %44, %45, %46, %47, %48, %49 = memref.extract_strided_metadata %43 : memref<?x?xf16, strided<[?, 1], offset: ?>> -> memref<f16>, index, index, index, index, index
        %50 = arith.constant 1 : index
        func.call @mips_matmul_f16(%30, %31, %34, %35, %37, %38, %42, %41, %44, %45, %48, %49, %22, %23, %28, %50) : (memref<f16>, index, index, index, memref<f16>, index, index, index, memref<f16>, index, index, index, index, index, index, index) -> ()
        func.return
      }
    }
  }
  func.func @dyn(%a: tensor<?x?xf16>, %b: tensor<?x?xf16>, %c: tensor<?x?xf16>) -> tensor<?x?xf16> {
    %r = arith.constant 0 : index
    %r_1 = tensor.dim %a, %r : tensor<?x?xf16>
    %r_2 = arith.constant 1 : index
    %r_3 = tensor.dim %a, %r_2 : tensor<?x?xf16>
    %r_4 = arith.constant 1 : index
    %r_5 = tensor.dim %b, %r_4 : tensor<?x?xf16>
    %r_6 = arith.constant 0 : index
    %r_7 = tensor.dim %b, %r_6 : tensor<?x?xf16>
    %r_8 = arith.constant 1 : index
    %r_9 = flow.dispatch @mips_exe_0::@mips_matmul_0[%r_1, %r_7, %r_3, %r_8](%a, %b, %c, %r_1, %r_7, %r_3, %r_8, %r_5, %r_8) : (tensor<?x?xf16>{%r_1, %r_3}, tensor<?x?xf16>{%r_7, %r_5}, tensor<?x?xf16>{%r_1, %r_7}, index, index, index, index, index, index) -> %c{%r_1, %r_7}
    func.return %r_9 : tensor<?x?xf16>
  }
}
