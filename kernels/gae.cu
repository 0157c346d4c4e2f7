// kernels/gae.cu — Generalized Advantage Estimation (Schulman et al. 2016) and masked whitening on the GPU.
// CPU reference: tinyds/posttrain/losses/gae.h (same names, same argument order, device pointers).
//
// Shapes: B sequences, T positions; rewards, values, mask, advantages, returns (B, T); x, out (n).
// Per row, walking t backwards over the positions with m = 1 (a masked position is skipped, not a step):
//   delta_t = r_t + gamma V_{t+1} - V_t;   A_t = delta_t + gamma lam A_{t+1} (GAE Eq. 16);   R_t = A_t + V_t
// with V and A after the last completion token 0. Masked positions get A = R = 0.
//
// Versions (one each):
//   compute_gae 1: one thread per sequence, a reverse scan over t. The recursion is sequential in t by definition,
//                  and B (a few dozen rollouts) threads is little for a GPU, but the whole thing is B*T ~ 1e4 flops:
//                  a launch costs more. (A_t is a linear recurrence, A_t = delta_t + c_t A_{t+1}, so a parallel
//                  scan over t, pairs (c, delta) combined associatively, is the next version when T grows.)
//   masked_whiten 1: one block: block reductions for the count, the mean, then the sum of squared deviations
//                  (two passes, as the CPU: the one-pass sum of squares loses digits when the mean is large).
#include "kernels/common.cuh"
#include "kernels/gae.cuh"
#include "kernels/reductions.cuh"
#include "tinyds/core/error.h"

namespace tinyds::cuda {

constexpr int kGaeBlock = 128;
constexpr int kWhitenBlock = 1024;

__global__ void compute_gae_kernel1(float* advantages, float* returns, const float* rewards, const float* values,
                                    const float* mask, int B, int T, float gamma, float lam) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= B) return;
  const long o = static_cast<long>(i) * T;
  float next_value = 0.0f;  // V_{t+1}: 0 after the last completion token (terminal state)
  float next_adv = 0.0f;    // A_{t+1}
  for (int t = T - 1; t >= 0; t--) {
    if (mask[o + t] == 0.0f) {  // not a step: skipped, and it does not break the chain
      advantages[o + t] = 0.0f;
      returns[o + t] = 0.0f;
      continue;
    }
    const float v = values[o + t];
    const float delta = rewards[o + t] + gamma * next_value - v;  // TD error
    const float a = delta + gamma * lam * next_adv;
    advantages[o + t] = a;
    returns[o + t] = a + v;
    next_value = v;
    next_adv = a;
  }
}

__global__ void masked_whiten_kernel1(float* out, const float* x, const float* mask, long n, bool shift_mean) {
  STATIC_SHARED(float, scratch, [32]);
  float c = 0.0f, s = 0.0f;
  for (long i = threadIdx.x; i < n; i += blockDim.x) {
    c += mask[i];
    s += mask[i] * x[i];
  }
  const float count = block_sum(c, scratch);
  const float mean = block_sum(s, scratch) / count;
  float ss = 0.0f;
  for (long i = threadIdx.x; i < n; i += blockDim.x) {
    const float d = x[i] - mean;
    ss += mask[i] * d * d;
  }
  const float var = block_sum(ss, scratch) / (count - 1.0f);  // Bessel: the mean came from the same values
  const float rstd = 1.0f / sqrtf(var + 1e-8f);  // 1e-8 as trl: a constant row does not divide by 0
  // Every read of x is behind the barriers of the last block_sum, so out may alias x.
  for (long i = threadIdx.x; i < n; i += blockDim.x)
    out[i] = mask[i] == 0.0f ? 0.0f : (x[i] - mean) * rstd + (shift_mean ? 0.0f : mean);
}

void compute_gae(float* advantages, float* returns, const float* rewards, const float* values, const float* mask,
                 int B, int T, double gamma, double lam, int version) {
  if (B < 1) throw_error("compute_gae: B = ", B, " must be >= 1");
  if (T < 1) throw_error("compute_gae: T = ", T, " must be >= 1");
  if (!(gamma >= 0.0 && gamma <= 1.0)) throw_error("compute_gae: gamma = ", gamma, " must be in [0, 1]");
  if (!(lam >= 0.0 && lam <= 1.0)) throw_error("compute_gae: lam = ", lam, " must be in [0, 1]");
  if (version != 0 && version != 1) throw_error("compute_gae: no kernel version ", version);
  launch(compute_gae_kernel1, dim3(ceil_div(B, kGaeBlock)), dim3(kGaeBlock), 0, advantages, returns, rewards, values,
         mask, B, T, static_cast<float>(gamma), static_cast<float>(lam));
}

void masked_whiten(float* out, const float* x, const float* mask, long n, bool shift_mean, int version) {
  if (n < 2) throw_error("masked_whiten: n = ", n, "; the unbiased variance needs at least 2 positions");
  if (version != 0 && version != 1) throw_error("masked_whiten: no kernel version ", version);
  launch(masked_whiten_kernel1, dim3(1), dim3(kWhitenBlock), 0, out, x, mask, n, shift_mean);
}

}  // namespace tinyds::cuda
