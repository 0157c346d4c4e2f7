// tinyds/ops/residual.cpp — the residual connection and elementwise helpers (see residual.h).
// Shapes: n elements. Gradients: da, db WRITTEN (=).
#include "tinyds/ops/residual.h"
#include "tinyds/ops/vmath.h"

namespace tinyds {

template <typename real>
void residual_forward(real* out,      // (n)
                      const real* a,  // (n)
                      const real* b,  // (n)
                      long n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// forward was: out = a + b, so d out / d a = d out / d b = 1: both branches receive dout unchanged.
template <typename real>
void residual_backward(real* da,          // (n) written, or nullptr
                       real* db,          // (n) written, or nullptr
                       const real* dout,  // (n)
                       long n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (long i = 0; i < n; i++) {
    if (da) da[i] = dout[i];
    if (db) db[i] = dout[i];
  }
}

template <typename real>
void add_inplace(real* acc,      // (n) accumulated
                 const real* x,  // (n)
                 long n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (long i = 0; i < n; i++) acc[i] += x[i];
}

template <typename real>
void scale_inplace(real* x,  // (n) scaled
                   real s,
                   long n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (long i = 0; i < n; i++) x[i] *= s;
}

template void residual_forward<float>(float*, const float*, const float*, long);
template void residual_forward<double>(double*, const double*, const double*, long);
template void residual_backward<float>(float*, float*, const float*, long);
template void residual_backward<double>(double*, double*, const double*, long);
template void add_inplace<float>(float*, const float*, long);
template void add_inplace<double>(double*, const double*, long);
template void scale_inplace<float>(float*, float, long);
template void scale_inplace<double>(double*, double, long);

}  // namespace tinyds
