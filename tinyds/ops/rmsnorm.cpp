// tinyds/ops/rmsnorm.cpp — RMSNorm forward and backward (see rmsnorm.h).
//
// Shapes: N rows, C width.
//   out[n,c] = inp[n,c] * rstd[n] * weight[c],   rstd[n] = 1 / sqrt(mean_c inp[n,c]^2 + eps)
// Gradients: dinp WRITTEN (=), dweight ACCUMULATED (+=).
#include "tinyds/ops/rmsnorm.h"

#include <algorithm>
#include <cmath>

#include "tinyds/ops/vmath.h"

namespace tinyds {

template <typename real>
void rmsnorm_forward(real* out,           // (N, C)
                     real* rstd,          // (N) saved for backward
                     const real* inp,     // (N, C)
                     const real* weight,  // (C)
                     int N, int C, real eps) {
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * C >= kParallelMinWork)
  for (int n = 0; n < N; n++) {
    const real* x = inp + static_cast<long>(n) * C;
    real* y = out + static_cast<long>(n) * C;
    // The mean of squares is accumulated in double: C terms of the same sign, so float would lose ~log2(C) bits.
    const double ss = lane_sum(C, [&](long c) { return static_cast<double>(x[c]) * x[c]; });
    const real r = static_cast<real>(1.0 / std::sqrt(ss / C + static_cast<double>(eps)));
    rstd[n] = r;
    for (int c = 0; c < C; c++) y[c] = x[c] * r * weight[c];
  }
}

// forward was: out = inp * rstd * weight,  rstd = (mean(inp^2) + eps)^(-1/2)
// With g = dout[n,:], x = inp[n,:], r = rstd[n]:
//   d out_c / d x_k = r w_c [c == k]  +  x_c w_c * d r / d x_k,   d r / d x_k = -r^3 x_k / C
//   so dinp_k = r w_k g_k  -  (r^3 / C) x_k * sum_c g_c w_c x_c
//   and dweight_c += sum_n g[n,c] x[n,c] r[n]
template <typename real>
void rmsnorm_backward(real* dinp,          // (N, C) written
                      real* dweight,       // (C) accumulated
                      const real* dout,    // (N, C)
                      const real* inp,     // (N, C)
                      const real* weight,  // (C)
                      const real* rstd,    // (N) from forward
                      int N, int C) {
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * C >= kParallelMinWork)
  for (int n = 0; n < N; n++) {
    const real* x = inp + static_cast<long>(n) * C;
    const real* g = dout + static_cast<long>(n) * C;
    real* dx = dinp + static_cast<long>(n) * C;
    const double r = rstd[n];
    // sum_c g_c w_c x_c, a row reduction: double
    const double gwx = lane_sum(C, [&](long c) { return static_cast<double>(g[c]) * weight[c] * x[c]; });
    const real a = static_cast<real>(r);
    const real b = static_cast<real>(r * r * r / C * gwx);
    for (int c = 0; c < C; c++) dx[c] = a * weight[c] * g[c] - b * x[c];
  }

  // dweight sums over rows. Each thread owns a block of columns and walks the rows in order, so every column's
  // sum is added in the same order for any thread count: same bits with 1 or 16 threads, and no atomics.
  const int block = 64;
  const int nblocks = (C + block - 1) / block;
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * C >= kParallelMinWork)
  for (int ib = 0; ib < nblocks; ib++) {
    const int c0 = ib * block, c1 = std::min(C, c0 + block);
    double acc[block] = {};
    for (int n = 0; n < N; n++) {
      const real* x = inp + static_cast<long>(n) * C;
      const real* g = dout + static_cast<long>(n) * C;
      const double r = rstd[n];
      for (int c = c0; c < c1; c++) acc[c - c0] += static_cast<double>(g[c]) * x[c] * r;
    }
    for (int c = c0; c < c1; c++) dweight[c] += static_cast<real>(acc[c - c0]);
  }
}

template void rmsnorm_forward<float>(float*, float*, const float*, const float*, int, int, float);
template void rmsnorm_forward<double>(double*, double*, const double*, const double*, int, int, double);
template void rmsnorm_backward<float>(float*, float*, const float*, const float*, const float*, const float*, int,
                                      int);
template void rmsnorm_backward<double>(double*, double*, const double*, const double*, const double*,
                                       const double*, int, int);

}  // namespace tinyds
