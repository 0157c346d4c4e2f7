// kernels/logprobs.cu — per-token log-probs of the sampled tokens and per-token entropy on the GPU, forward and
// backward. CPU reference: tinyds/posttrain/losses/logprobs.h (same names, same argument order, device pointers).
//
// Shapes: N rows (B*T positions), V vocab.   logits (N, V), targets (N), lp, dlp, entropy, dentropy (N),
// dlogits (N, V).   z = logits / temperature;  lse = log sum_v exp(z_v);  log p_v = z_v - lse.
//   lp = log p[target];   H = -sum_v p_v log p_v
// A target < 0 is masked: lp = H = 0 and a zero dlogits row. Gradients: dlogits WRITTEN (=).
//
// Version 1 (the only one), every direction: one block per row, threads striding over the vocab, block reductions
// for the max, the sum of exps (and for H the sum of p log p). The CPU works in double; here the row is float, with
// the same max subtraction, so the difference is float rounding of a V-term sum (see the tolerances in the test).
// This is the same row pass as kernels/cross_entropy.cu plus a temperature; it is kept separate because it mirrors
// a separate CPU op (the RL losses' input) and its backward has the opposite sign convention (d lp, not d loss).
#include "kernels/common.cuh"
#include "kernels/logprobs.cuh"
#include "kernels/reductions.cuh"
#include "tinyds/core/error.h"

namespace tinyds::cuda {

constexpr int kLogprobsBlock = 256;

// lse of z = x * inv_t over one row; every thread of the block gets it. Max subtraction: every exponent is <= 0.
__device__ __forceinline__ float row_lse(const float* x, int V, float inv_t, float* scratch) {
  float m = -INFINITY;
  for (int v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, x[v] * inv_t);
  m = block_max(m, scratch);
  float s = 0.0f;
  for (int v = threadIdx.x; v < V; v += blockDim.x) s += expf(x[v] * inv_t - m);
  s = block_sum(s, scratch);
  return m + logf(s);
}

// H = -sum_v p_v log p_v with log p_v = z_v - lse; every thread gets it.
__device__ __forceinline__ float row_entropy(const float* x, int V, float inv_t, float lse, float* scratch) {
  float h = 0.0f;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float logp = x[v] * inv_t - lse;
    h -= expf(logp) * logp;
  }
  return block_sum(h, scratch);
}

__global__ void logprobs_forward_kernel1(float* lp, const float* logits, const int* targets, int V, float inv_t) {
  STATIC_SHARED(float, scratch, [32]);
  const int n = blockIdx.x, t = targets[n];
  // A masked row is decided per block, so the whole block returns together (no thread is left at a barrier).
  if (t < 0) {
    if (threadIdx.x == 0) lp[n] = 0.0f;
    return;
  }
  const float* x = logits + static_cast<long>(n) * V;
  const float lse = row_lse(x, V, inv_t, scratch);
  if (threadIdx.x == 0) lp[n] = x[t] * inv_t - lse;
}

// forward was: lp = z[t] - lse(z), z = logits / T.   d lse / d z_v = p_v, d z_v / d logits_v = 1 / T:
//   dlogits_v = dlp ([v == t] - p_v) / T
__global__ void logprobs_backward_kernel1(float* dlogits, const float* dlp, const float* logits, const int* targets,
                                          int V, float inv_t) {
  STATIC_SHARED(float, scratch, [32]);
  const int n = blockIdx.x, t = targets[n];
  float* dx = dlogits + static_cast<long>(n) * V;
  if (t < 0) {
    for (int v = threadIdx.x; v < V; v += blockDim.x) dx[v] = 0.0f;
    return;
  }
  const float* x = logits + static_cast<long>(n) * V;
  const float lse = row_lse(x, V, inv_t, scratch);
  const float g = dlp[n] * inv_t;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float p = expf(x[v] * inv_t - lse);
    dx[v] = v == t ? g * (1.0f - p) : -g * p;
  }
}

__global__ void entropy_forward_kernel1(float* entropy, const float* logits, const int* targets, int V,
                                        float inv_t) {
  STATIC_SHARED(float, scratch, [32]);
  const int n = blockIdx.x;
  if (targets[n] < 0) {  // the targets carry only the mask here
    if (threadIdx.x == 0) entropy[n] = 0.0f;
    return;
  }
  const float* x = logits + static_cast<long>(n) * V;
  const float lse = row_lse(x, V, inv_t, scratch);
  const float h = row_entropy(x, V, inv_t, lse, scratch);
  if (threadIdx.x == 0) entropy[n] = h;
}

// forward was: H = -sum_v p_v log p_v.   dH / dz_u = -p_u (log p_u + H)   (derivation in logprobs.cpp); / T.
__global__ void entropy_backward_kernel1(float* dlogits, const float* dentropy, const float* logits,
                                         const int* targets, int V, float inv_t) {
  STATIC_SHARED(float, scratch, [32]);
  const int n = blockIdx.x;
  float* dx = dlogits + static_cast<long>(n) * V;
  if (targets[n] < 0) {
    for (int v = threadIdx.x; v < V; v += blockDim.x) dx[v] = 0.0f;
    return;
  }
  const float* x = logits + static_cast<long>(n) * V;
  const float lse = row_lse(x, V, inv_t, scratch);
  const float h = row_entropy(x, V, inv_t, lse, scratch);
  const float g = dentropy[n] * inv_t;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float logp = x[v] * inv_t - lse;
    dx[v] = -g * expf(logp) * (logp + h);
  }
}

static void check_logprob_args(int N, int V, double temperature, int version, const char* where) {
  if (N < 0) throw_error(where, ": N = ", N, " must be >= 0");
  if (V < 1) throw_error(where, ": V = ", V, " must be >= 1");
  if (!(temperature > 0.0)) throw_error(where, ": temperature = ", temperature, " must be > 0");
  if (version != 0 && version != 1) throw_error(where, ": no kernel version ", version);
}

// 1 / temperature in double, rounded once to float (the CPU multiplies by the double 1 / T).
static float inverse_temperature(double temperature) { return static_cast<float>(1.0 / temperature); }

void logprobs_forward(float* lp, const float* logits, const int* targets, int N, int V, double temperature,
                      int version) {
  check_logprob_args(N, V, temperature, version, "logprobs_forward");
  if (N == 0) return;
  launch(logprobs_forward_kernel1, dim3(N), dim3(kLogprobsBlock), 0, lp, logits, targets, V,
         inverse_temperature(temperature));
}

void logprobs_backward(float* dlogits, const float* dlp, const float* logits, const int* targets, int N, int V,
                       double temperature, int version) {
  check_logprob_args(N, V, temperature, version, "logprobs_backward");
  if (N == 0) return;
  launch(logprobs_backward_kernel1, dim3(N), dim3(kLogprobsBlock), 0, dlogits, dlp, logits, targets, V,
         inverse_temperature(temperature));
}

void entropy_forward(float* entropy, const float* logits, const int* targets, int N, int V, double temperature,
                     int version) {
  check_logprob_args(N, V, temperature, version, "entropy_forward");
  if (N == 0) return;
  launch(entropy_forward_kernel1, dim3(N), dim3(kLogprobsBlock), 0, entropy, logits, targets, V,
         inverse_temperature(temperature));
}

void entropy_backward(float* dlogits, const float* dentropy, const float* logits, const int* targets, int N, int V,
                      double temperature, int version) {
  check_logprob_args(N, V, temperature, version, "entropy_backward");
  if (N == 0) return;
  launch(entropy_backward_kernel1, dim3(N), dim3(kLogprobsBlock), 0, dlogits, dentropy, logits, targets, V,
         inverse_temperature(temperature));
}

}  // namespace tinyds::cuda
