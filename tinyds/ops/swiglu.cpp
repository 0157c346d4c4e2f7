// tinyds/ops/swiglu.cpp — the SwiGLU gate (see swiglu.h).
// Shapes: n elements.  out = silu(a) * b,  silu(a) = a * sigmoid(a).  Gradients: da, db WRITTEN (=).
#include "tinyds/ops/swiglu.h"

#include "tinyds/ops/vmath.h"

namespace tinyds {

// Elements are processed in fixed chunks of kChunk (by absolute index, so the chunking does not depend on the
// thread count); each chunk's e^-a goes through an aligned stack buffer with the vectorised exp of vmath.h.
constexpr long kChunk = 1024;

// e (m) = exp(-a (m)), e aligned.
template <typename real>
static inline void exp_neg(real* e, const real* a, long m) {
  for (long i = 0; i < m; i++) e[i] = -a[i];
  exp_inplace_aligned(e, m);
}

template <typename real>
void swiglu_forward(real* out,      // (n)
                    const real* a,  // (n) gate pre-activation, w1 x
                    const real* b,  // (n) up projection, w3 x
                    long n) {
  const long nchunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (long c = 0; c < nchunks; c++) {
    alignas(kExpAlign) real e[kChunk];
    const long i0 = c * kChunk, m = n - i0 < kChunk ? n - i0 : kChunk;
    exp_neg(e, a + i0, m);
    // sigmoid(a) = 1 / (1 + e^-a): for a very negative, e^-a = +inf and sigmoid is exactly 0, never NaN.
    for (long i = 0; i < m; i++) out[i0 + i] = a[i0 + i] / (real(1) + e[i]) * b[i0 + i];
  }
}

// forward was: out = a * sigmoid(a) * b
//   d out / d b = silu(a) = a sigmoid(a)
//   d out / d a = b * (sigmoid(a) + a * sigmoid(a) * (1 - sigmoid(a)))      (sigmoid' = sigmoid (1 - sigmoid))
template <typename real>
void swiglu_backward(real* da,          // (n) written
                     real* db,          // (n) written
                     const real* dout,  // (n)
                     const real* a,     // (n)
                     const real* b,     // (n)
                     long n) {
  const long nchunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (long c = 0; c < nchunks; c++) {
    alignas(kExpAlign) real e[kChunk];
    const long i0 = c * kChunk, m = n - i0 < kChunk ? n - i0 : kChunk;
    exp_neg(e, a + i0, m);
    for (long i = 0; i < m; i++) {
      const long k = i0 + i;
      const real s = real(1) / (real(1) + e[i]);
      const real g = dout[k];
      da[k] = g * b[k] * s * (real(1) + a[k] * (real(1) - s));
      db[k] = g * a[k] * s;
    }
  }
}

template void swiglu_forward<float>(float*, const float*, const float*, long);
template void swiglu_forward<double>(double*, const double*, const double*, long);
template void swiglu_backward<float>(float*, float*, const float*, const float*, const float*, long);
template void swiglu_backward<double>(double*, double*, const double*, const double*, const double*, long);

}  // namespace tinyds
