// tinyds/ops/cross_entropy.cpp — fused softmax + cross-entropy with a loss mask (see cross_entropy.h).
//
// Shapes: N rows (B*T), V vocab.   lse[n] = log sum_v exp(logits[n,v]);   losses[n] = lse[n] - logits[n, target]
// A target < 0 is masked: loss 0, gradient row 0. Gradients: dlogits WRITTEN (=).
#include "tinyds/ops/cross_entropy.h"

#include <cmath>

#include "tinyds/core/error.h"
#include "tinyds/core/parallel_error.h"
#include "tinyds/ops/vmath.h"

namespace tinyds {

// A target >= V would read past the row; it is an input error (a tokenizer/vocab mismatch), so name the row.
static void check_targets(const int* targets, int N, int V, const char* where) {
  for (int n = 0; n < N; n++)
    if (targets[n] >= V)
      throw_error(where, ": targets[", n, "] = ", targets[n], " is outside the vocab [0, V=", V,
                  ") (use a negative target to mask a position)");
}

template <typename real>
void cross_entropy_forward(real* losses,        // (N)
                           real* lse,           // (N) saved for backward
                           const real* logits,  // (N, V)
                           const int* targets,  // (N), < 0 = masked
                           int N, int V) {
  check_targets(targets, N, V, "cross_entropy_forward");
  FirstError failure;  // the per-thread scratch may fail to allocate (core/parallel_error.h)
#pragma omp parallel if (static_cast<long>(N) * V >= kParallelMinWork)
  {
    ExpBuffer<real> e;  // per-thread aligned scratch for the row's exps (vmath.h)
    const bool ready = failure.run([&] { e.resize(exp_padded<real>(V)); });
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      if (!ready) continue;  // the allocation error is rethrown after the region
      const real* x = logits + static_cast<long>(n) * V;
      // Max subtraction: log sum exp(x) = m + log sum exp(x - m) with every exponent <= 0, so nothing overflows
      // even for logits ~ 1000, and the largest term is exactly 1 so the sum never underflows to 0.
      real m = x[0];
      for (int v = 1; v < V; v++) m = x[v] > m ? x[v] : m;
      for (int v = 0; v < V; v++) e[v] = x[v] - m;
      exp_inplace_aligned(e.data(), V);
      // V positive terms: accumulate in double
      const double sum = lane_sum(V, [&](long v) { return static_cast<double>(e[v]); });
      const double l = static_cast<double>(m) + std::log(sum);
      lse[n] = static_cast<real>(l);
      losses[n] = targets[n] < 0 ? real(0) : static_cast<real>(l - x[targets[n]]);
    }
  }
  failure.rethrow();
}

// forward was: losses[n] = lse[n] - logits[n, t],  lse[n] = log sum_v exp(logits[n, v])
//   d lse / d logits[n,v] = exp(logits[n,v] - lse[n]) = softmax(logits[n])_v
//   so dlogits[n,v] = dlosses[n] * (softmax_v - [v == t]);  a masked row (t < 0) had loss 0: zero gradient.
template <typename real>
void cross_entropy_backward(real* dlogits,        // (N, V) written
                            const real* dlosses,  // (N)
                            const real* logits,   // (N, V)
                            const real* lse,      // (N) from forward
                            const int* targets,   // (N)
                            int N, int V) {
  check_targets(targets, N, V, "cross_entropy_backward");
  FirstError failure;  // the per-thread scratch may fail to allocate (core/parallel_error.h)
#pragma omp parallel if (static_cast<long>(N) * V >= kParallelMinWork)
  {
    ExpBuffer<real> e;
    const bool ready = failure.run([&] { e.resize(exp_padded<real>(V)); });
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      if (!ready) continue;  // the allocation error is rethrown after the region
      const real* x = logits + static_cast<long>(n) * V;
      real* dx = dlogits + static_cast<long>(n) * V;
      const int t = targets[n];
      if (t < 0) {
        for (int v = 0; v < V; v++) dx[v] = real(0);
        continue;
      }
      const real g = dlosses[n], l = lse[n];
      for (int v = 0; v < V; v++) e[v] = x[v] - l;
      exp_inplace_aligned(e.data(), V);  // softmax(x)_v = exp(x_v - lse)
      for (int v = 0; v < V; v++) dx[v] = g * e[v];
      dx[t] -= g;
    }
  }
  failure.rethrow();
}

template void cross_entropy_forward<float>(float*, float*, const float*, const int*, int, int);
template void cross_entropy_forward<double>(double*, double*, const double*, const int*, int, int);
template void cross_entropy_backward<float>(float*, const float*, const float*, const float*, const int*, int,
                                            int);
template void cross_entropy_backward<double>(double*, const double*, const double*, const double*, const int*,
                                             int, int);

}  // namespace tinyds
