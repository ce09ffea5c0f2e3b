// RUN: mipsc opt %s -p flatten-dynamic-views | filecheck %s

// A view regrouping two dynamic dims ([?,?,4] -> [?,16]) goes through a 1-D view, the sizes
// list kept; a view with one dynamic dim ([?,16] -> [?,4,4]) and a flatten to 1-D stay.
// CHECK-LABEL: func.func @main
// CHECK:       %[[SIZES:.*]] = torch.prim.ListConstruct %{{.*}}, %{{.*}} : (!torch.int, !torch.int) -> !torch.list<int>
// CHECK-NEXT:  %[[M1:.*]] = torch.constant.int -1
// CHECK-NEXT:  %[[FLAT_SIZES:.*]] = torch.prim.ListConstruct %[[M1]] : (!torch.int) -> !torch.list<int>
// CHECK-NEXT:  %[[FLAT:.*]] = torch.aten.view %arg0, %[[FLAT_SIZES]] : !torch.vtensor<[?,?,4],f32>, !torch.list<int> -> !torch.vtensor<[?],f32>
// CHECK-NEXT:  %[[Y:.*]] = torch.aten.view %[[FLAT]], %[[SIZES]] : !torch.vtensor<[?],f32>, !torch.list<int> -> !torch.vtensor<[?,16],f32>
// CHECK:       torch.aten.view %[[Y]], %{{.*}} : !torch.vtensor<[?,16],f32>, !torch.list<int> -> !torch.vtensor<[?,4,4],f32>
// CHECK:       torch.aten.view %arg0, %{{.*}} : !torch.vtensor<[?,?,4],f32>, !torch.list<int> -> !torch.vtensor<[?],f32>
// CHECK-NOT:   torch.aten.view
func.func @main(%arg0: !torch.vtensor<[?,?,4],f32>, %n: !torch.int) -> (!torch.vtensor<[?,4,4],f32>, !torch.vtensor<[?],f32>) {
  %int16 = torch.constant.int 16
  %int4 = torch.constant.int 4
  %sizes = torch.prim.ListConstruct %n, %int16 : (!torch.int, !torch.int) -> !torch.list<int>
  %y = torch.aten.view %arg0, %sizes : !torch.vtensor<[?,?,4],f32>, !torch.list<int> -> !torch.vtensor<[?,16],f32>
  %sizes2 = torch.prim.ListConstruct %n, %int4, %int4 : (!torch.int, !torch.int, !torch.int) -> !torch.list<int>
  %z = torch.aten.view %y, %sizes2 : !torch.vtensor<[?,16],f32>, !torch.list<int> -> !torch.vtensor<[?,4,4],f32>
  %m1 = torch.constant.int -1
  %flat = torch.prim.ListConstruct %m1 : (!torch.int) -> !torch.list<int>
  %f = torch.aten.view %arg0, %flat : !torch.vtensor<[?,?,4],f32>, !torch.list<int> -> !torch.vtensor<[?],f32>
  func.return %z, %f : !torch.vtensor<[?,4,4],f32>, !torch.vtensor<[?],f32>
}
