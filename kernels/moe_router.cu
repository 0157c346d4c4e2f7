// kernels/moe_router.cu — the MoE router (gate) on the GPU: expert scores, bias-only top-K selection with
// optional group limit, normalised gate weights, and the backward to the router logits.
//
// Shapes: N tokens, E routed experts, K experts per token, G = E / n_group experts per group.
// CPU reference: tinyds/ops/moe_router.h (.cpp). Formulas (DESIGN 4.2; DeepSeek-V3 arXiv 2412.19437 Eq. 13-16):
//   s      = sigmoid(logits) or softmax(logits) over E          (N, E)
//   chosen = TopK_e(s + b, K), ties to the lower expert index    bias b chooses, it never weighs (V3 Eq. 16)
//   g_k    = route_scale * s[chosen_k] / sum_{j in chosen} s[j]  (V3 Eq. 13)
// Gradients: dlogits WRITTEN (=).
//
// Version 1: one thread per token. A token's work is O(K E) (K passes of an argmax over E), done serially in
// the CPU's order: the scores, hence the choice, are the CPU's bits (under the emulation; on a GPU expf may differ
// from glibc's in the last bit, which can only flip a choice between two experts whose biased scores are within
// an ulp). What it teaches: selection by repeated argmax needs no sort and no scratch array; the group limit can
// be decided by counting, per group, how many groups rank before it (a rank test instead of a sort).
// Its weakness on a GPU: neighbouring threads read rows E floats apart (uncoalesced), and a thread does O(K E)
// serial work.
// Version 2 (the one the GPU path uses, for E <= 1024 and n_group <= 32; version 1 otherwise): one warp per token.
// Lanes read a row's consecutive experts (coalesced); each argmax pass is a per-lane scan of E/32 experts plus a
// 5-step shuffle butterfly on (value, index) pairs; the group ranks are shuffles and a ballot. The two sums whose
// last bits decide choices (the softmax denominator) or weights (S) stay in one lane in the CPU's order.
// Backward (one version): one thread per token, the CPU's double arithmetic in the CPU's order.
#include "kernels/common.cuh"
#include "kernels/moe_router.cuh"

#include "tinyds/core/error.h"

namespace tinyds::cuda {

namespace {

// "expert a ranks before expert b": larger value first, on equal values the lower index first. The same rule as
// the CPU's ranks_before, so the choice is a pure function of the values.
__device__ __forceinline__ bool ranks_before(float va, int a, float vb, int b) {
  return va > vb || (va == vb && a < b);
}

// The biased score s_e + b_e that ranks experts (recomputed where needed: the same two floats give the same sum).
__device__ __forceinline__ float biased_score(const float* s, const float* bias, int e) {
  return bias ? s[e] + bias[e] : s[e];
}

// A group's score: the sum of its two largest biased scores (its one score if G == 1), accumulated exactly as
// the CPU's choose_experts does (same comparisons, same single addition), so equal inputs give equal bits.
__device__ float group_score(const float* s, const float* bias, int g, int G) {
  float best = biased_score(s, bias, g * G), second = 0.0f;
  bool has_second = false;
  for (int j = 1; j < G; j++) {
    const float x = biased_score(s, bias, g * G + j);
    if (x > best) {
      second = best;
      best = x;
      has_second = true;
    } else if (!has_second || x > second) {
      second = x;
      has_second = true;
    }
  }
  return has_second ? best + second : best;
}

// Bit g set when group g is among the topk_group best groups. Group g is chosen exactly when fewer than
// topk_group groups rank before it; ranks_before is a strict total order, so this is the CPU's partial sort's set.
__device__ unsigned long long eligible_groups(const float* s, const float* bias, int n_group, int G,
                                              int topk_group) {
  unsigned long long mask = 0ull;
  for (int g = 0; g < n_group; g++) {
    const float sg = group_score(s, bias, g, G);
    int ahead = 0;
    for (int h = 0; h < n_group; h++)
      if (h != g && ranks_before(group_score(s, bias, h, G), h, sg, g)) ahead++;
    if (ahead < topk_group) mask |= 1ull << g;
  }
  return mask;
}

__global__ void moe_router_forward_kernel1(float* scores,        // (N, E) out
                                           int* topk_idx,        // (N, K) out
                                           float* topk_w,        // (N, K) out
                                           const float* logits,  // (N, E)
                                           const float* bias,    // (E) or nullptr
                                           int N, int E, int K, int softmax, float route_scale, int n_group,
                                           int topk_group) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;  // no barrier in this kernel, so surplus threads may leave early
  const float* x = logits + static_cast<long>(n) * E;
  float* s = scores + static_cast<long>(n) * E;
  int* idx = topk_idx + static_cast<long>(n) * K;
  float* w = topk_w + static_cast<long>(n) * K;

  // 1. scores, in the CPU's arithmetic (float exponentials, the softmax denominator summed in double)
  if (!softmax) {
    // 1 / (1 + e^-x): for x very negative e^-x = inf and s is exactly 0, never NaN.
    for (int e = 0; e < E; e++) s[e] = 1.0f / (1.0f + expf(-x[e]));
  } else {
    // Max subtraction: every exponent is <= 0 (no overflow) and the largest term is 1 (the sum is >= 1).
    float m = x[0];
    for (int e = 1; e < E; e++) m = fmaxf(m, x[e]);
    double sum = 0.0;
    for (int e = 0; e < E; e++) {
      s[e] = expf(x[e] - m);
      sum += s[e];
    }
    for (int e = 0; e < E; e++) s[e] = static_cast<float>(s[e] / sum);
  }

  // 2. eligible experts: all, or those of the topk_group best groups
  const int G = n_group > 1 ? E / n_group : E;
  const unsigned long long groups = n_group > 1 ? eligible_groups(s, bias, n_group, G, topk_group) : ~0ull;

  // 3. K passes of an argmax over the eligible, not yet chosen experts: best first, like the CPU's partial sort.
  //    The bias only ranks (aux-loss-free balancing, V3 Eq. 16); the weights below use s alone.
  for (int k = 0; k < K; k++) {
    int best = -1;
    float best_v = 0.0f;
    for (int e = 0; e < E; e++) {
      if (!((groups >> (e / G)) & 1ull)) continue;
      bool taken = false;
      for (int j = 0; j < k; j++) taken = taken || idx[j] == e;
      if (taken) continue;
      const float v = biased_score(s, bias, e);
      if (best < 0 || ranks_before(v, e, best_v, best)) {
        best = e;
        best_v = v;
      }
    }
    idx[k] = best;
  }

  // 4. g_k = route_scale * s[chosen_k] / S, S summed in double in k order (as the CPU does)
  double S = 0.0;
  for (int k = 0; k < K; k++) S += s[idx[k]];
  for (int k = 0; k < K; k++) w[k] = static_cast<float>(route_scale * (s[idx[k]] / S));
}

// ---- version 2: one warp per token ----
// Lanes split the experts (lane l owns e = l, l + 32, ...). Each of the K passes is a per-lane argmax over its own
// experts followed by a 5-step butterfly over the warp that exchanges (value, index) pairs: afterwards every lane
// holds the winner, and ranks_before (value, then lower index) makes the result independent of the lanes' order.
// The softmax denominator and the weights' sum S stay in one lane, in the CPU's order: a choice depends on the
// scores' last bits, so they must be the CPU's.
constexpr int kWarpsPerBlock = 4;

// The better of (v, e) and the pair held by the lane `mask` away; e = -1 means "no candidate".
__device__ __forceinline__ void warp_argmax_step(float& v, int& e, int mask) {
  const float ov = __shfl_xor_sync(0xffffffffu, v, mask);
  const int oe = __shfl_xor_sync(0xffffffffu, e, mask);
  if (oe >= 0 && (e < 0 || ranks_before(ov, oe, v, e))) {
    v = ov;
    e = oe;
  }
}

__global__ void moe_router_forward_kernel2(float* scores,        // (N, E) out
                                           int* topk_idx,        // (N, K) out
                                           float* topk_w,        // (N, K) out
                                           const float* logits,  // (N, E)
                                           const float* bias,    // (E) or nullptr
                                           int N, int E, int K, int softmax, float route_scale, int n_group,
                                           int topk_group) {
  const int lane = threadIdx.x % 32;
  const int n = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  // A warp past the last token still runs every barrier and shuffle (they need the whole block / warp); it just
  // reads and writes nothing. `live` is the same for the 32 lanes of a warp.
  const bool live = n < N;
  const float* x = logits + static_cast<long>(live ? n : 0) * E;
  float* s = scores + static_cast<long>(live ? n : 0) * E;

  // 1. scores. Sigmoid: lanes over e. Softmax: lanes write the exponentials, lane 0 sums them in e order.
  if (live && !softmax)
    for (int e = lane; e < E; e += 32) s[e] = 1.0f / (1.0f + expf(-x[e]));
  if (softmax) {
    float m = -INFINITY;
    if (live)
      for (int e = lane; e < E; e += 32) m = fmaxf(m, x[e]);
    for (int mask = 16; mask > 0; mask /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, mask));  // exact in any order
    if (live)
      for (int e = lane; e < E; e += 32) s[e] = expf(x[e] - m);  // minus the max: no overflow
    __syncthreads();  // lane 0 reads the other lanes' exponentials
    double sum = 0.0;
    if (live && lane == 0)
      for (int e = 0; e < E; e++) sum += s[e];
    sum = __shfl_sync(0xffffffffu, sum, 0);
    if (live)
      for (int e = lane; e < E; e += 32) s[e] = static_cast<float>(s[e] / sum);
  }
  __syncthreads();  // every lane's scores are visible to the whole warp

  // 2. eligible groups: lane g < n_group scores group g; the ranks are counted over shuffled group scores
  unsigned long long groups = ~0ull;
  const int G = n_group > 1 ? E / n_group : E;
  if (n_group > 1) {
    const float my_gs = live && lane < n_group ? group_score(s, bias, lane, G) : 0.0f;
    int ahead = 0;
    for (int h = 0; h < n_group; h++) {
      const float gs_h = __shfl_sync(0xffffffffu, my_gs, h);
      if (h != lane && ranks_before(gs_h, h, my_gs, lane)) ahead++;
    }
    groups = __ballot_sync(0xffffffffu, lane < n_group && ahead < topk_group);
  }

  // 3. K passes of a warp argmax over the eligible, not yet chosen experts
  unsigned taken = 0u;  // bit j: this lane's expert lane + 32 j is chosen (E <= 1024, checked by the launcher)
  for (int k = 0; k < K; k++) {
    float v = 0.0f;
    int best = -1;
    if (live)
      for (int e = lane, j = 0; e < E; e += 32, j++) {
        if (((taken >> j) & 1u) || !((groups >> (e / G)) & 1ull)) continue;
        const float b = biased_score(s, bias, e);
        if (best < 0 || ranks_before(b, e, v, best)) {
          v = b;
          best = e;
        }
      }
    for (int mask = 16; mask > 0; mask /= 2) warp_argmax_step(v, best, mask);
    if (live && best % 32 == lane) taken |= 1u << (best / 32);  // the owner remembers its expert is taken
    if (live && lane == 0) topk_idx[static_cast<long>(n) * K + k] = best;
  }

  // 4. g_k = route_scale * s[chosen_k] / S: lane 0, in k order like the CPU (it wrote idx itself)
  if (live && lane == 0) {
    const int* idx = topk_idx + static_cast<long>(n) * K;
    float* w = topk_w + static_cast<long>(n) * K;
    double S = 0.0;
    for (int k = 0; k < K; k++) S += s[idx[k]];
    for (int k = 0; k < K; k++) w[k] = static_cast<float>(route_scale * (s[idx[k]] / S));
  }
}

// forward was: w_k = rs * s[i_k] / S,  S = sum_j s[i_j]
//   dL/ds[i_m] += rs / S * (dw_m - A),  A = sum_k dw_k s[i_k] / S;  unchosen experts get nothing from w.
// then through s = sigmoid(x) (ds/dx = s (1 - s)) or s = softmax(x) (dx_e = s_e (ds_e - sum_j ds_j s_j)).
// ds_e is recomputed where it is needed instead of stored: a token's E values would not fit in registers for
// large E, and the recomputation is O(K) per expert.
__device__ __forceinline__ double score_grad(int e, const float* dw, const int* idx, const float* extra, int K,
                                             double c, double A) {
  double ds = extra ? static_cast<double>(extra[e]) : 0.0;
  for (int k = 0; k < K; k++)
    if (idx[k] == e) ds += c * (static_cast<double>(dw[k]) - A);
  return ds;
}

__global__ void moe_router_backward_kernel1(float* dlogits,              // (N, E) written
                                            const float* dtopk_w,        // (N, K)
                                            const float* dscores_extra,  // (N, E) or nullptr
                                            const float* scores,         // (N, E)
                                            const int* topk_idx,         // (N, K)
                                            int N, int E, int K, int softmax, float route_scale) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const float* s = scores + static_cast<long>(n) * E;
  const float* dw = dtopk_w + static_cast<long>(n) * K;
  const int* idx = topk_idx + static_cast<long>(n) * K;
  const float* extra = dscores_extra ? dscores_extra + static_cast<long>(n) * E : nullptr;
  float* dl = dlogits + static_cast<long>(n) * E;
  double S = 0.0, A = 0.0;
  for (int k = 0; k < K; k++) S += s[idx[k]];
  for (int k = 0; k < K; k++) A += static_cast<double>(dw[k]) * s[idx[k]];
  A /= S;
  const double c = static_cast<double>(route_scale) / S;
  if (!softmax) {
    for (int e = 0; e < E; e++)
      dl[e] = static_cast<float>(score_grad(e, dw, idx, extra, K, c, A) * s[e] * (1.0 - s[e]));
    return;
  }
  double dot = 0.0;
  for (int e = 0; e < E; e++) dot += score_grad(e, dw, idx, extra, K, c, A) * s[e];
  for (int e = 0; e < E; e++) dl[e] = static_cast<float>(s[e] * (score_grad(e, dw, idx, extra, K, c, A) - dot));
}

void check_router_dims(int N, int E, int K, const char* where) {
  if (N < 0 || E < 1 || K < 1 || K > E)
    throw_error(where, ": need N >= 0 and 1 <= K <= E, got N=", N, " E=", E, " K=", K);
}

}  // namespace

void moe_router_forward(float* scores, int* topk_idx, float* topk_w, const float* logits, const float* bias, int N,
                        int E, int K, ScoreFunc func, float route_scale, int n_group, int topk_group, int version) {
  check_router_dims(N, E, K, "cuda::moe_router_forward");
  if (n_group > 1) {
    if (n_group > 64 || E % n_group != 0 || topk_group < 1 || topk_group > n_group ||
        K > topk_group * (E / n_group))
      throw_error("cuda::moe_router_forward: bad group limit n_group=", n_group, " topk_group=", topk_group, " for E=",
                  E, " K=", K,
                  " (need n_group <= 64 dividing E, 1 <= topk_group <= n_group, K <= topk_group*E/n_group)");
  }
  if (version < 0 || version > 2) throw_error("cuda::moe_router_forward: no kernel version ", version, " (0, 1, 2)");
  if (version == 0) version = E <= 1024 && n_group <= 32 ? 2 : 1;
  if (N == 0) return;  // a grid of zero blocks is a launch error
  const int softmax = func == ScoreFunc::softmax ? 1 : 0;
  if (version == 2) {
    if (E > 1024 || n_group > 32)
      throw_error("cuda::moe_router_forward: version 2 needs E <= 1024 and n_group <= 32, got E=", E, " n_group=",
                  n_group);
    launch(moe_router_forward_kernel2, dim3(ceil_div(N, kWarpsPerBlock)), dim3(32 * kWarpsPerBlock), 0, scores,
           topk_idx, topk_w, logits, bias, N, E, K, softmax, route_scale, n_group, topk_group);
    return;
  }
  const int block = 128;
  launch(moe_router_forward_kernel1, dim3(ceil_div(N, block)), dim3(block), 0, scores, topk_idx, topk_w, logits,
         bias, N, E, K, softmax, route_scale, n_group, topk_group);
}

void moe_router_backward(float* dlogits, const float* dtopk_w, const float* dscores_extra, const float* scores,
                         const int* topk_idx, int N, int E, int K, ScoreFunc func, float route_scale, int version) {
  check_router_dims(N, E, K, "cuda::moe_router_backward");
  if (version != 0 && version != 1) throw_error("cuda::moe_router_backward: no kernel version ", version);
  if (N == 0) return;
  const int block = 128;
  launch(moe_router_backward_kernel1, dim3(ceil_div(N, block)), dim3(block), 0, dlogits, dtopk_w, dscores_extra,
         scores, topk_idx, N, E, K, func == ScoreFunc::softmax ? 1 : 0, route_scale);
}

}  // namespace tinyds::cuda
