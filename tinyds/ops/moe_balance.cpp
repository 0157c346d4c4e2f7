// tinyds/ops/moe_balance.cpp — expert load, aux-loss-free bias update, MaxVio, and the sequence-wise and
// expert-level balance losses with their backward (see moe_balance.h for the formulas).
//
// Shapes: N = B*T tokens, E experts, K slots per token.  Gradients: dscores WRITTEN (=).
#include "tinyds/ops/vmath.h"
#include "tinyds/ops/moe_balance.h"

#include <algorithm>
#include <vector>

#include "tinyds/core/error.h"

namespace tinyds {

void moe_expert_load(int* load,            // (E) out
                     const int* topk_idx,  // (N, K)
                     int N, int K, int E) {
  for (int i = 0; i < E; i++) load[i] = 0;
  const long P = static_cast<long>(N) * K;
  for (long p = 0; p < P; p++) {
    const int e = topk_idx[p];
    if (e < 0 || e >= E)
      throw_error("moe_expert_load: topk_idx[", p / K, ", ", p % K, "] = ", e, " is outside [0, E=", E, ")");
    load[e]++;
  }
}

template <typename real>
void moe_update_bias(real* bias,       // (E) updated in place
                     const int* load,  // (E)
                     int E, real gamma) {
  long total = 0;
  for (int i = 0; i < E; i++) total += load[i];
  for (int i = 0; i < E; i++) {
    // sign(mean - load_i) = sign(total - E * load_i): compared in integers, so an exactly average expert gets
    // sign 0 (no float rounding of the mean can make it look over- or underloaded).
    const long d = total - static_cast<long>(E) * load[i];
    const int sgn = (d > 0) - (d < 0);
    bias[i] += gamma * static_cast<real>(sgn);
  }
}

double moe_maxvio(const int* load,  // (E)
                  int E) {
  long total = 0;
  int mx = 0;
  for (int i = 0; i < E; i++) {
    total += load[i];
    mx = std::max(mx, load[i]);
  }
  if (total == 0) return 0.0;  // nothing routed: nothing violated
  return static_cast<double>(mx) * E / static_cast<double>(total) - 1.0;
}

static void check_loss_dims(int B, int T, int E, int K, const char* where) {
  if (B < 1 || T < 1 || E < 1 || K < 1 || K > E)
    throw_error(where, ": need B >= 1, T >= 1 and 1 <= K <= E, got B=", B, " T=", T, " E=", E, " K=", K);
}

template <typename real>
real moe_seqaux_forward(real* f,               // (B, E) out
                        const real* scores,    // (N, E), N = B*T
                        const int* topk_idx,   // (N, K)
                        int B, int T, int E, int K, real alpha) {
  check_loss_dims(B, T, E, K, "moe_seqaux_forward");
  std::vector<int> count(E);
  std::vector<double> P(E);
  double total = 0.0;  // sum over sequences of sum_i f_i P_i, in b order
  for (int b = 0; b < B; b++) {
    const long row0 = static_cast<long>(b) * T;
    // f_i = E / (K T) * sum_t 1[i chosen for t]   (V3 Eq. 18)
    moe_expert_load(count.data(), topk_idx + row0 * K, T, K, E);
    for (int i = 0; i < E; i++)
      f[static_cast<long>(b) * E + i] = static_cast<real>(double(E) * count[i] / (double(K) * T));
    // P_i = (1/T) sum_t s_ti / sum_j s_tj      (V3 Eq. 19-20)
    std::fill(P.begin(), P.end(), 0.0);
    for (int t = 0; t < T; t++) {
      const real* s = scores + (row0 + t) * E;
      double S = 0.0;
      for (int j = 0; j < E; j++) S += s[j];
      for (int i = 0; i < E; i++) P[i] += s[i] / S;
    }
    double fp = 0.0;  // sum_i f_i P_i   (V3 Eq. 17 without alpha)
    for (int i = 0; i < E; i++) fp += static_cast<double>(f[static_cast<long>(b) * E + i]) * (P[i] / T);
    total += fp;
  }
  return static_cast<real>(static_cast<double>(alpha) * total / B);
}

// forward was: L = (alpha / B) sum_b sum_i f_bi P_bi,  P_bi = (1/T) sum_t s_ti / S_t,  S_t = sum_j s_tj
//   dL/ds_tj = alpha / (B T) * (f_bj / S_t - sum_i f_bi s_ti / S_t^2)
//            = alpha / (B T S_t) * (f_bj - sum_i f_bi s'_ti)         (t in sequence b; f constant)
template <typename real>
void moe_seqaux_backward(real* dscores,       // (N, E) written
                         real dloss,
                         const real* f,       // (B, E) from forward
                         const real* scores,  // (N, E)
                         int B, int T, int E, real alpha) {
  check_loss_dims(B, T, E, 1, "moe_seqaux_backward");
  const int N = B * T;
  const double c = static_cast<double>(dloss) * alpha / (static_cast<double>(B) * T);
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * E >= kParallelMinWork)
  for (int n = 0; n < N; n++) {
    const real* s = scores + static_cast<long>(n) * E;
    const real* fb = f + static_cast<long>(n / T) * E;
    real* ds = dscores + static_cast<long>(n) * E;
    double S = 0.0, fs = 0.0;
    for (int j = 0; j < E; j++) S += s[j];
    for (int i = 0; i < E; i++) fs += static_cast<double>(fb[i]) * s[i];
    fs /= S;  // sum_i f_i s'_ti
    for (int j = 0; j < E; j++) ds[j] = static_cast<real>(c / S * (static_cast<double>(fb[j]) - fs));
  }
}

// The expert-level loss is the sequence-wise loss with one "sequence" holding all N tokens.
template <typename real>
real moe_aux_forward(real* f,              // (E) out
                     const real* scores,   // (N, E)
                     const int* topk_idx,  // (N, K)
                     int N, int E, int K, real alpha) {
  return moe_seqaux_forward(f, scores, topk_idx, 1, N, E, K, alpha);
}

template <typename real>
void moe_aux_backward(real* dscores,       // (N, E) written
                      real dloss,
                      const real* f,       // (E) from forward
                      const real* scores,  // (N, E)
                      int N, int E, real alpha) {
  moe_seqaux_backward(dscores, dloss, f, scores, 1, N, E, alpha);
}

template void moe_update_bias<float>(float*, const int*, int, float);
template void moe_update_bias<double>(double*, const int*, int, double);
template float moe_seqaux_forward<float>(float*, const float*, const int*, int, int, int, int, float);
template double moe_seqaux_forward<double>(double*, const double*, const int*, int, int, int, int, double);
template void moe_seqaux_backward<float>(float*, float, const float*, const float*, int, int, int, float);
template void moe_seqaux_backward<double>(double*, double, const double*, const double*, int, int, int, double);
template float moe_aux_forward<float>(float*, const float*, const int*, int, int, int, float);
template double moe_aux_forward<double>(double*, const double*, const int*, int, int, int, double);
template void moe_aux_backward<float>(float*, float, const float*, const float*, int, int, float);
template void moe_aux_backward<double>(double*, double, const double*, const double*, int, int, double);

}  // namespace tinyds
