// tinyds/posttrain/losses/logprobs.cpp — per-token log-probs and entropy from logits (see logprobs.h).
//
// Shapes: N rows, V vocab.  z = logits / T,  p = softmax(z),  lp = log p[target],  H = -sum_v p log p.
// Gradients: dlogits WRITTEN (=). Rows are independent, so the OpenMP loops give the same bits for any thread count.
#include "tinyds/posttrain/losses/logprobs.h"

#include <cmath>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/core/parallel_error.h"
#include "tinyds/ops/vmath.h"
#include "tinyds/posttrain/losses/row_softmax.h"

namespace tinyds {

static void check_logprob_args(const int* targets, int N, int V, double temperature, const char* where) {
  if (N < 0) throw_error(where, ": N = ", N, " must be >= 0");
  if (V < 1) throw_error(where, ": V = ", V, " must be >= 1");
  if (!(temperature > 0.0)) throw_error(where, ": temperature = ", temperature, " must be > 0");
  for (int n = 0; n < N; n++)
    if (targets[n] >= V)
      throw_error(where, ": targets[", n, "] = ", targets[n], " is outside the vocab [0, V=", V,
                  ") (use a negative target to mask a position)");
}

template <typename real>
void logprobs_forward(real* lp,            // (N)
                      const real* logits,  // (N, V)
                      const int* targets,  // (N), < 0 = masked
                      int N, int V, double temperature) {
  check_logprob_args(targets, N, V, temperature, "logprobs_forward");
  FirstError failure;  // the per-thread scratch may fail to allocate (core/parallel_error.h)
#pragma omp parallel if (static_cast<long>(N) * V >= kParallelMinWork)
  {
    std::vector<double> logp;  // per-thread row scratch
    const bool ready = failure.run([&] { logp.resize(V); });
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      if (!ready) continue;  // the allocation error is rethrown after the region
      if (targets[n] < 0) {
        lp[n] = real(0);
        continue;
      }
      detail::row_log_softmax(logp.data(), logits + static_cast<long>(n) * V, V, temperature);
      lp[n] = static_cast<real>(logp[targets[n]]);
    }
  }
  failure.rethrow();
}

// forward was: lp[n] = z[t] - lse(z),  z = logits[n] / T
//   d lse / d z[v] = p[v],  d z[v] / d logits[n, v] = 1 / T
//   so dlogits[n, v] = dlp[n] * ([v == t] - p[v]) / T;  a masked row had lp = 0: zero gradient.
template <typename real>
void logprobs_backward(real* dlogits,      // (N, V) written
                       const real* dlp,     // (N)
                       const real* logits,  // (N, V)
                       const int* targets,  // (N)
                       int N, int V, double temperature) {
  check_logprob_args(targets, N, V, temperature, "logprobs_backward");
  FirstError failure;  // the per-thread scratch may fail to allocate (core/parallel_error.h)
#pragma omp parallel if (static_cast<long>(N) * V >= kParallelMinWork)
  {
    std::vector<double> logp;
    const bool ready = failure.run([&] { logp.resize(V); });
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      if (!ready) continue;  // the allocation error is rethrown after the region
      real* dx = dlogits + static_cast<long>(n) * V;
      const int t = targets[n];
      if (t < 0) {
        for (int v = 0; v < V; v++) dx[v] = real(0);
        continue;
      }
      detail::row_log_softmax(logp.data(), logits + static_cast<long>(n) * V, V, temperature);
      const double g = static_cast<double>(dlp[n]) / temperature;
      for (int v = 0; v < V; v++) dx[v] = static_cast<real>(-g * std::exp(logp[v]));
      dx[t] = static_cast<real>(g * (1.0 - std::exp(logp[t])));
    }
  }
  failure.rethrow();
}

template <typename real>
void entropy_forward(real* entropy,       // (N)
                     const real* logits,  // (N, V)
                     const int* targets,  // (N), < 0 = masked
                     int N, int V, double temperature) {
  check_logprob_args(targets, N, V, temperature, "entropy_forward");
  FirstError failure;  // the per-thread scratch may fail to allocate (core/parallel_error.h)
#pragma omp parallel if (static_cast<long>(N) * V >= kParallelMinWork)
  {
    std::vector<double> logp;
    const bool ready = failure.run([&] { logp.resize(V); });
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      if (!ready) continue;  // the allocation error is rethrown after the region
      if (targets[n] < 0) {
        entropy[n] = real(0);
        continue;
      }
      detail::row_log_softmax(logp.data(), logits + static_cast<long>(n) * V, V, temperature);
      double h = 0.0;
      for (int v = 0; v < V; v++) h -= std::exp(logp[v]) * logp[v];
      entropy[n] = static_cast<real>(h);
    }
  }
  failure.rethrow();
}

// forward was: H = -sum_v p[v] log p[v],  p = softmax(z),  z = logits[n] / T
//   d log p[v] / d z[u] = [u == v] - p[u]
//   dH / dz[u] = -sum_v p[v] ([u == v] - p[u]) (log p[v] + 1) = -p[u] (log p[u] + 1) + p[u] (1 - H)
//              = -p[u] (log p[u] + H);   then divide by T for d / d logits.
template <typename real>
void entropy_backward(real* dlogits,         // (N, V) written
                      const real* dentropy,  // (N)
                      const real* logits,    // (N, V)
                      const int* targets,    // (N)
                      int N, int V, double temperature) {
  check_logprob_args(targets, N, V, temperature, "entropy_backward");
  FirstError failure;  // the per-thread scratch may fail to allocate (core/parallel_error.h)
#pragma omp parallel if (static_cast<long>(N) * V >= kParallelMinWork)
  {
    std::vector<double> logp;
    const bool ready = failure.run([&] { logp.resize(V); });
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      if (!ready) continue;  // the allocation error is rethrown after the region
      real* dx = dlogits + static_cast<long>(n) * V;
      if (targets[n] < 0) {
        for (int v = 0; v < V; v++) dx[v] = real(0);
        continue;
      }
      detail::row_log_softmax(logp.data(), logits + static_cast<long>(n) * V, V, temperature);
      double h = 0.0;
      for (int v = 0; v < V; v++) h -= std::exp(logp[v]) * logp[v];
      const double g = static_cast<double>(dentropy[n]) / temperature;
      for (int v = 0; v < V; v++) dx[v] = static_cast<real>(-g * std::exp(logp[v]) * (logp[v] + h));
    }
  }
  failure.rethrow();
}

template void logprobs_forward<float>(float*, const float*, const int*, int, int, double);
template void logprobs_forward<double>(double*, const double*, const int*, int, int, double);
template void logprobs_backward<float>(float*, const float*, const float*, const int*, int, int, double);
template void logprobs_backward<double>(double*, const double*, const double*, const int*, int, int, double);
template void entropy_forward<float>(float*, const float*, const int*, int, int, double);
template void entropy_forward<double>(double*, const double*, const int*, int, int, double);
template void entropy_backward<float>(float*, const float*, const float*, const int*, int, int, double);
template void entropy_backward<double>(double*, const double*, const double*, const int*, int, int, double);

}  // namespace tinyds
