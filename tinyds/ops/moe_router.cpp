// tinyds/ops/moe_router.cpp — the MoE router: scores, (group-limited) top-K selection, normalised gate weights,
// and the backward through the weights (see moe_router.h).
//
// Shapes: N tokens, E routed experts, K experts per token, G = E / n_group experts per group.
//   s = sigmoid(logits) or softmax(logits);  chosen = TopK(s + b);  g_k = route_scale * s[chosen_k] / S,
//   S = sum_{j in chosen} s[j]          (DeepSeek-V3 Eq. 13 with its route_scale)
// Gradients: dlogits WRITTEN (=). No parameter gradient here (the centroids' gradient is matmul_backward's; the
// bias has none: it is moved by moe_update_bias, not by the optimizer).
// Every token is independent, so the loops run in parallel over tokens with the same bits for any thread count.
#include "tinyds/ops/vmath.h"
#include "tinyds/ops/moe_router.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/core/parallel_error.h"

namespace tinyds {

const char* score_func_name(ScoreFunc f) { return f == ScoreFunc::sigmoid ? "sigmoid" : "softmax"; }

ScoreFunc parse_score_func(const std::string& s) {
  if (s == "sigmoid") return ScoreFunc::sigmoid;
  if (s == "softmax") return ScoreFunc::softmax;
  throw_error("unknown MoE score function '", s, "' (expected sigmoid or softmax)");
}

static void check_dims(int N, int E, int K, const char* where) {
  if (N < 0 || E < 1 || K < 1 || K > E)
    throw_error(where, ": need N >= 0 and 1 <= K <= E, got N=", N, " E=", E, " K=", K);
}

static void check_groups(int E, int K, int n_group, int topk_group, const char* where) {
  if (n_group <= 1) return;
  if (E % n_group != 0)
    throw_error(where, ": n_group=", n_group, " does not divide the number of experts E=", E);
  if (topk_group < 1 || topk_group > n_group)
    throw_error(where, ": topk_group=", topk_group, " must be in [1, n_group=", n_group, "]");
  if (K > topk_group * (E / n_group))
    throw_error(where, ": K=", K, " experts cannot be chosen from topk_group=", topk_group, " groups of ",
                E / n_group, " experts");
}

// Checked before the parallel loops: an exception must not leave an OpenMP region.
template <typename real>
static void check_finite(const real* x, long n, int width, const char* what, const char* where) {
  for (long i = 0; i < n; i++)
    if (!std::isfinite(x[i]))
      throw_error(where, ": ", what, "[", i / width, ", ", i % width, "] = ", x[i], " is not finite");
}

// "a ranks before b": larger value first, and on equal values the lower index first, so the choice is a pure
// function of the values (no dependence on the sort algorithm).
template <typename real>
static bool ranks_before(const real* v, int a, int b) {
  return v[a] > v[b] || (v[a] == v[b] && a < b);
}

// The k best of the candidates cand[0..m) by v (ranks_before order), written to out (k) best first. cand is
// reordered.
template <typename real>
static void top_k_of(int* out, int* cand, int m, int k, const real* v) {
  std::partial_sort(cand, cand + k, cand + m, [v](int a, int b) { return ranks_before(v, a, b); });
  std::copy(cand, cand + k, out);
}

// One token's choice. biased (E) = s + b. With groups, only experts of the topk_group best groups are candidates.
// Scratch: cand (E), gscore (n_group), gcand (n_group).
template <typename real>
static void choose_experts(int* idx, const real* biased, int E, int K, int n_group, int topk_group, int* cand,
                           real* gscore, int* gcand) {
  if (n_group <= 1) {
    for (int e = 0; e < E; e++) cand[e] = e;
    top_k_of(idx, cand, E, K, biased);
    return;
  }
  const int G = E / n_group;
  // Group score = sum of the group's two largest biased scores (one, if a group has a single expert). V3's code
  // does this when a bias exists and uses the max alone without one; tinyds always uses the top-2 sum.
  for (int g = 0; g < n_group; g++) {
    real best = biased[g * G], second = real(0);
    bool has_second = false;
    for (int j = 1; j < G; j++) {
      const real x = biased[g * G + j];
      if (x > best) {
        second = best;
        best = x;
        has_second = true;
      } else if (!has_second || x > second) {
        second = x;
        has_second = true;
      }
    }
    gscore[g] = has_second ? best + second : best;
    gcand[g] = g;
  }
  std::partial_sort(gcand, gcand + topk_group, gcand + n_group,
                    [gscore](int a, int b) { return ranks_before(gscore, a, b); });
  // Candidates: the experts of the chosen groups, in increasing index order (the tie rule needs no order, but a
  // fixed one keeps the code easy to follow).
  std::sort(gcand, gcand + topk_group);
  int m = 0;
  for (int q = 0; q < topk_group; q++)
    for (int j = 0; j < G; j++) cand[m++] = gcand[q] * G + j;
  top_k_of(idx, cand, m, K, biased);
}

// s (E) = sigmoid or softmax of x (E).
template <typename real>
static void score_row(real* s, const real* x, int E, ScoreFunc func) {
  if (func == ScoreFunc::sigmoid) {
    // 1 / (1 + e^-x): for x very negative e^-x = inf and s is exactly 0, never NaN.
    for (int e = 0; e < E; e++) s[e] = real(1) / (real(1) + std::exp(-x[e]));
    return;
  }
  // Max subtraction: every exponent is <= 0 (no overflow) and the largest term is 1 (the sum is >= 1).
  real m = x[0];
  for (int e = 1; e < E; e++) m = std::max(m, x[e]);
  double sum = 0.0;
  for (int e = 0; e < E; e++) {
    s[e] = std::exp(x[e] - m);
    sum += s[e];
  }
  for (int e = 0; e < E; e++) s[e] = static_cast<real>(s[e] / sum);
}

template <typename real>
void moe_router_forward(real* scores,        // (N, E) out
                        int* topk_idx,       // (N, K) out
                        real* topk_w,        // (N, K) out
                        const real* logits,  // (N, E)
                        const real* bias,    // (E) or nullptr
                        int N, int E, int K, ScoreFunc func, real route_scale, int n_group, int topk_group) {
  check_dims(N, E, K, "moe_router_forward");
  check_groups(E, K, n_group, topk_group, "moe_router_forward");
  check_finite(logits, static_cast<long>(N) * E, E, "logits", "moe_router_forward");
  if (bias) check_finite(bias, E, E, "bias", "moe_router_forward");
  const int ng = n_group > 1 ? n_group : 1;
  FirstError failure;  // the per-thread scratch may fail to allocate (core/parallel_error.h)
#pragma omp parallel if (static_cast<long>(N) * E >= kParallelMinWork)
  {
    std::vector<real> biased, gscore;
    std::vector<int> cand, gcand;
    const bool ready = failure.run([&] {
      biased.resize(E);
      gscore.resize(ng);
      cand.resize(E);
      gcand.resize(ng);
    });
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      if (!ready) continue;  // the allocation error is rethrown after the region
      real* s = scores + static_cast<long>(n) * E;
      int* idx = topk_idx + static_cast<long>(n) * K;
      real* w = topk_w + static_cast<long>(n) * K;
      score_row(s, logits + static_cast<long>(n) * E, E, func);
      // The bias only shifts the ranking (aux-loss-free balancing, V3 Eq. 16); the weights below use s alone.
      for (int e = 0; e < E; e++) biased[e] = bias ? s[e] + bias[e] : s[e];
      choose_experts(idx, biased.data(), E, K, n_group, topk_group, cand.data(), gscore.data(), gcand.data());
      double S = 0.0;
      for (int k = 0; k < K; k++) S += s[idx[k]];
      // S > 0: sigmoid and softmax scores are positive (a sigmoid underflowing to exactly 0 for all K chosen
      // experts would need every logit below about -88 in float; the weights are then NaN, as 0/0 should be).
      for (int k = 0; k < K; k++) w[k] = static_cast<real>(route_scale * (s[idx[k]] / S));
    }
  }
  failure.rethrow();
}

// One token. ds (E) on entry holds the extra score gradient (or zeros); on exit the full dL/ds.
// forward was: w_k = rs * s[i_k] / S,  S = sum_j s[i_j]
//   dw_k/ds[i_m] = rs * ([k == m] / S - s[i_k] / S^2)
//   so dL/ds[i_m] += rs / S * (dw_m - A),  A = sum_k dw_k s[i_k] / S;  unchosen experts get nothing from w.
template <typename real>
static void weights_backward_row(double* ds, const real* dw, const real* s, const int* idx, int K, real route_scale) {
  double S = 0.0, A = 0.0;
  for (int k = 0; k < K; k++) S += s[idx[k]];
  for (int k = 0; k < K; k++) A += static_cast<double>(dw[k]) * s[idx[k]];
  A /= S;
  const double c = static_cast<double>(route_scale) / S;
  for (int k = 0; k < K; k++) ds[idx[k]] += c * (static_cast<double>(dw[k]) - A);
}

template <typename real>
void moe_router_backward(real* dlogits,              // (N, E) written
                         const real* dtopk_w,        // (N, K)
                         const real* dscores_extra,  // (N, E) or nullptr
                         const real* scores,         // (N, E) from forward
                         const int* topk_idx,        // (N, K) from forward
                         int N, int E, int K, ScoreFunc func, real route_scale) {
  check_dims(N, E, K, "moe_router_backward");
  for (long i = 0; i < static_cast<long>(N) * K; i++)
    if (topk_idx[i] < 0 || topk_idx[i] >= E)
      throw_error("moe_router_backward: topk_idx[", i / K, ", ", i % K, "] = ", topk_idx[i], " is outside [0, E=", E,
                  ")");
  FirstError failure;  // the per-thread scratch may fail to allocate (core/parallel_error.h)
#pragma omp parallel if (static_cast<long>(N) * E >= kParallelMinWork)
  {
    std::vector<double> ds;
    const bool ready = failure.run([&] { ds.resize(E); });
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      if (!ready) continue;  // the allocation error is rethrown after the region
      const real* s = scores + static_cast<long>(n) * E;
      real* dl = dlogits + static_cast<long>(n) * E;
      for (int e = 0; e < E; e++) ds[e] = dscores_extra ? dscores_extra[static_cast<long>(n) * E + e] : 0.0;
      weights_backward_row(ds.data(), dtopk_w + static_cast<long>(n) * K, s, topk_idx + static_cast<long>(n) * K, K,
                           route_scale);
      if (func == ScoreFunc::sigmoid) {
        // forward was s = sigmoid(x):  ds/dx = s (1 - s)
        for (int e = 0; e < E; e++) dl[e] = static_cast<real>(ds[e] * s[e] * (1.0 - s[e]));
      } else {
        // forward was s = softmax(x):  dx_e = s_e (ds_e - sum_j ds_j s_j)
        double dot = 0.0;
        for (int e = 0; e < E; e++) dot += ds[e] * s[e];
        for (int e = 0; e < E; e++) dl[e] = static_cast<real>(s[e] * (ds[e] - dot));
      }
    }
  }
  failure.rethrow();
}

template void moe_router_forward<float>(float*, int*, float*, const float*, const float*, int, int, int, ScoreFunc,
                                        float, int, int);
template void moe_router_forward<double>(double*, int*, double*, const double*, const double*, int, int, int,
                                         ScoreFunc, double, int, int);
template void moe_router_backward<float>(float*, const float*, const float*, const float*, const int*, int, int, int,
                                         ScoreFunc, float);
template void moe_router_backward<double>(double*, const double*, const double*, const double*, const int*, int, int,
                                          int, ScoreFunc, double);

}  // namespace tinyds
