// tinyds/ops/swiglu.h — the SwiGLU gate (Shazeer 2020): out = silu(a) * b, silu(a) = a * sigmoid(a).
// The FFN is w2( swiglu(w1 x, w3 x) ); the two projections are matmuls. Shapes: n elements.
// Conventions: see embedding.h.
#pragma once

namespace tinyds {

// out (n) = silu(a) * b
template <typename real>
void swiglu_forward(real* out, const real* a, const real* b, long n);

// da (n), db (n) written.
template <typename real>
void swiglu_backward(real* da, real* db, const real* dout, const real* a, const real* b, long n);

}  // namespace tinyds
