// RUN: not mipsc opt %s --split-input-file 2>&1 | filecheck %s

func.func @dynamic(%q: tensor<?x8xf32>, %k: tensor<4x8xf32>) -> tensor<?x8xf32> {
  %0 = mips.attention %q, %k, %k scale(1.0 : f64) : tensor<?x8xf32>, tensor<4x8xf32>, tensor<4x8xf32> -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}
// CHECK: error: 'mips.attention' op mips.attention takes static shapes, query is ?x8

// -----

func.func @head_dim(%q: tensor<2x3x8xf32>, %k: tensor<2x4x6xf32>) -> tensor<2x3x6xf32> {
  %0 = mips.attention %q, %k, %k scale(1.0 : f64) : tensor<2x3x8xf32>, tensor<2x4x6xf32>, tensor<2x4x6xf32> -> tensor<2x3x6xf32>
  return %0 : tensor<2x3x6xf32>
}
// CHECK: error: 'mips.attention' op key [2, 4, 6] and value [2, 4, 6] do not fit query [2, 3, 8]

// -----

func.func @groups(%q: tensor<1x3x5x8xf32>, %k: tensor<1x2x4x8xf32>) -> tensor<1x3x5x8xf32> {
  %0 = mips.attention %q, %k, %k scale(1.0 : f64) : tensor<1x3x5x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32> -> tensor<1x3x5x8xf32>
  return %0 : tensor<1x3x5x8xf32>
}
// CHECK: error: 'mips.attention' op 3 query heads do not group over 2 key/value heads

// -----

func.func @result(%q: tensor<5x8xf32>, %k: tensor<4x8xf32>, %v: tensor<4x2xf32>) -> tensor<5x8xf32> {
  %0 = mips.attention %q, %k, %v scale(1.0 : f64) : tensor<5x8xf32>, tensor<4x8xf32>, tensor<4x2xf32> -> tensor<5x8xf32>
  return %0 : tensor<5x8xf32>
}
// CHECK: error: 'mips.attention' op result must be [5, 2], got [5, 8]

// -----

func.func @mask_shape(%q: tensor<5x8xf32>, %k: tensor<4x8xf32>, %m: tensor<5x3xf32>) -> tensor<5x8xf32> {
  %0 = mips.attention %q, %k, %k mask(%m : tensor<5x3xf32>) scale(1.0 : f64) : tensor<5x8xf32>, tensor<4x8xf32>, tensor<4x8xf32> -> tensor<5x8xf32>
  return %0 : tensor<5x8xf32>
}
// CHECK: error: 'mips.attention' op mask [5, 3] does not broadcast to [5, 4]

// -----

func.func @mask_batch(%q: tensor<2x3x1x5x8xf32>, %k: tensor<2x3x1x4x8xf32>, %m: tensor<1x3x1x5x4xf32>) -> tensor<2x3x1x5x8xf32> {
  %0 = mips.attention %q, %k, %k mask(%m : tensor<1x3x1x5x4xf32>) scale(1.0 : f64) : tensor<2x3x1x5x8xf32>, tensor<2x3x1x4x8xf32>, tensor<2x3x1x4x8xf32> -> tensor<2x3x1x5x8xf32>
  return %0 : tensor<2x3x1x5x8xf32>
}
// CHECK: error: 'mips.attention' op mask [1, 3, 1, 5, 4]: batch dims must be all 1 or all [2, 3]

// -----

func.func @element_types(%q: tensor<5x8xf32>, %k: tensor<4x8xbf16>) -> tensor<5x8xf32> {
  %0 = mips.attention %q, %k, %k scale(1.0 : f64) : tensor<5x8xf32>, tensor<4x8xbf16>, tensor<4x8xbf16> -> tensor<5x8xf32>
  return %0 : tensor<5x8xf32>
}
// CHECK: error: 'mips.attention' op query, key, value, mask and result must share one element type

// -----

// A valid one is printed back (causal, a mask broadcast over batch and heads).
func.func @ok(%q: tensor<2x4x5x8xf32>, %k: tensor<2x2x6x8xf32>, %m: tensor<5x6xf32>) -> tensor<2x4x5x8xf32> {
  %0 = mips.attention %q, %k, %k mask(%m : tensor<5x6xf32>) causal scale(0.5 : f64) : tensor<2x4x5x8xf32>, tensor<2x2x6x8xf32>, tensor<2x2x6x8xf32> -> tensor<2x4x5x8xf32>
  return %0 : tensor<2x4x5x8xf32>
}
// CHECK: mips.attention %q, %k, %k mask(%m : tensor<5x6xf32>) causal scale(5.000000e-01 : f64) : tensor<2x4x5x8xf32>, tensor<2x2x6x8xf32>, tensor<2x2x6x8xf32> -> tensor<2x4x5x8xf32>
