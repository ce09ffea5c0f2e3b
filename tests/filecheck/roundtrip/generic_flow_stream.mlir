// RUN: mipsc opt %s -p lower-mips-to-call > %t.custom.mlir
// RUN: mipsc opt %t.custom.mlir --print-op-generic > %t.generic.mlir
// RUN: filecheck %s --input-file=%t.generic.mlir
// RUN: mipsc opt %t.generic.mlir > %t.back.mlir && diff %t.custom.mlir %t.back.mlir

// The flow and stream ops the lowering makes, in the generic form, and back: the same module
// as their own syntax prints (a dynamic M, so the dispatch carries its sizes).
func.func @mm(%a: tensor<?x19xf32>, %b: tensor<19x23xf32>, %c: tensor<?x23xf32>) -> tensor<?x23xf32> {
  %r = mips.matmul ins(%a, %b : tensor<?x19xf32>, tensor<19x23xf32>) outs(%c : tensor<?x23xf32>) -> tensor<?x23xf32>
  return %r : tensor<?x23xf32>
}
// CHECK:      "stream.executable"() <{sym_name = "mips_exe_0", sym_visibility = "private"}> ({
// CHECK-NEXT:   "stream.executable.export"() <{sym_name = "mips_matmul_0", sym_visibility = "public", function_ref = @mips_matmul_0}> ({
// CHECK:          "stream.return"(
// CHECK:        "stream.binding.subspan"(
// CHECK:        "stream.dispatch.workgroup.id"() <{dimension = 0 : index}> : () -> index
// CHECK:        "stream.dispatch.workgroup.count"() <{dimension = 0 : index}> : () -> index
// CHECK:      "flow.dispatch"({{.*}}) <{entry_points = [@mips_exe_0::@mips_matmul_0], tied_operands = [2 : index]
