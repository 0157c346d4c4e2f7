// tinyds/ops/residual.h — the residual connection and elementwise helpers.
// Shapes: n elements. Conventions: see embedding.h.
#pragma once

namespace tinyds {

// out (n) = a + b
template <typename real>
void residual_forward(real* out, const real* a, const real* b, long n);
// da = dout, db = dout (both written; either may be nullptr)
template <typename real>
void residual_backward(real* da, real* db, const real* dout, long n);
// acc (n) += x (n): used where one activation feeds two branches (its gradients sum).
template <typename real>
void add_inplace(real* acc, const real* x, long n);
// x (n) *= s: used where a gradient is weighted before another is added to it (PPO-ptx's gamma, posttrain/ptx.cpp).
template <typename real>
void scale_inplace(real* x, real s, long n);

}  // namespace tinyds
