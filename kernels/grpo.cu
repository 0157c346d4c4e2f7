// kernels/grpo.cu — GRPO (DeepSeekMath arXiv 2402.03300, Eq. 3-4) on the GPU: group advantages, the clipped,
// k3-regularised token loss with its aggregation, and its gradient.
// CPU reference: tinyds/posttrain/losses/grpo.h (same names and argument order, device pointers; stats on the device).
//
// Shapes: B sequences in consecutive groups of G, T positions.  lp, lp_old, lp_ref, mask, dlp (B, T); rewards,
// advantages (B); stats (kGrpoNumStats).
//   A_i = (R_i - mean_group(R)) / (std_group(R) + 1e-4)           (std unbiased; no division when !scale_rewards)
//   l_t = -min(r A, clip(r, 1 - eps, 1 + eps_high) A) + beta k3,   r = exp(lp - lp_old),
//   k3  = exp(lp_ref - lp) - (lp_ref - lp) - 1
//   L   = sum_i w_i sum_t m l   with w_i = 1 / (B max(n_i, 1)) (grpo), 1 / max(sum m, 1) (bnpo, dapo),
//         1 / (B max_completion_length) (dr_grpo)
// Gradients: dlp WRITTEN (=).
//
// Versions (one each):
//   advantages 1: one thread per group, walking its G rewards serially in double, as the CPU does: G is 2 to 64, so
//                 a group is a few dozen flops and the CPU's bits are worth more than parallelism here.
//   loss 1, backward 1: ONE block; warp w takes rows w, w + 32, ...; a row's lanes stride over its T tokens and a
//                 warp reduction gives the row's sums (n_i, sum m l, ...), which the per-row weight w_i needs
//                 before anything can be added across rows. One block avoids a grid-wide synchronisation (two
//                 kernels and a scratch buffer) and gives a fixed order of additions. An RL batch is ~1e4 tokens:
//                 one block of 1024 threads reads it in microseconds, nothing next to the policy's forward pass.
#include <algorithm>

#include "kernels/common.cuh"
#include "kernels/grpo.cuh"
#include "kernels/reductions.cuh"
#include "tinyds/core/error.h"

namespace tinyds::cuda {

constexpr int kGrpoAdvBlock = 128;
constexpr int kGrpoLossBlock = 1024;

__global__ void grpo_advantages_kernel1(float* advantages, const float* rewards, int num_groups, int G,
                                        bool scale_rewards) {
  const int grp = blockIdx.x * blockDim.x + threadIdx.x;
  if (grp >= num_groups) return;
  const float* R = rewards + static_cast<long>(grp) * G;
  float* A = advantages + static_cast<long>(grp) * G;
  double mean = 0.0;
  for (int j = 0; j < G; j++) mean += static_cast<double>(R[j]);
  mean /= G;
  double ss = 0.0;
  bool degenerate = true;
  for (int j = 0; j < G; j++) {
    ss += (R[j] - mean) * (R[j] - mean);
    degenerate = degenerate && R[j] == R[0];
  }
  // Degenerate group (all rewards equal): A = 0 exactly; R - mean may be a rounding residue that divided by
  // std + 1e-4 would be a spurious signal.
  if (degenerate) {
    for (int j = 0; j < G; j++) A[j] = 0.0f;
    return;
  }
  const double std = sqrt(ss / (G - 1));  // unbiased, as torch.std (trl)
  const double scale = scale_rewards ? 1.0 / (std + 1e-4) : 1.0;  // 1e-4 as trl
  for (int j = 0; j < G; j++) A[j] = static_cast<float>((R[j] - mean) * scale);
}

// The per-token surrogate of one unmasked token: loss l (without the KL term), and whether the clip removed the
// gradient. -min(r A, clip(r) A) = max(-r A, -clip(r) A); the clipped term is strictly larger only when the clip is
// active: A > 0 and r > hi, or A < 0 and r < lo.
struct GrpoToken {
  float r, loss;
  bool clipped_low, clipped_high;
};
__device__ __forceinline__ GrpoToken grpo_token(float lp, float lp_old, float a, float lo, float hi) {
  GrpoToken k;
  k.r = expf(lp - lp_old);
  const float rc = fminf(fmaxf(k.r, lo), hi);
  k.loss = -fminf(k.r * a, rc * a);  // DeepSeekMath Eq. 3, the pessimistic surrogate
  k.clipped_low = k.r < lo && a < 0.0f;
  k.clipped_high = k.r > hi && a > 0.0f;
  return k;
}

// k3 = exp(x) - x - 1 with x = lp_ref - lp, as expm1(x) - x (no cancellation when pi ~ ref; kernels/kl.cu).
__device__ __forceinline__ float k3(float lp, float lp_ref) {
  const float x = lp_ref - lp;
  return expm1f(x) - x;
}

__global__ void grpo_loss_forward_kernel1(float* stats, const float* lp, const float* lp_old, const float* lp_ref,
                                          const float* advantages, const float* mask, int B, int T, float beta,
                                          float lo, float hi, int loss_type, int max_completion_length) {
  STATIC_SHARED(float, scratch, [32]);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;
  // Per-warp totals over its rows (every lane holds the same value after each warp_sum).
  float sum_seq_means = 0.0f;  // sum_i (sum_t m l) / max(n_i, 1)   (grpo)
  float sum_l = 0.0f, sum_kl = 0.0f, count = 0.0f, low = 0.0f, high = 0.0f;
  for (int i = warp; i < B; i += nwarps) {
    const float a = advantages[i];
    float row_l = 0.0f, row_kl = 0.0f, row_n = 0.0f, row_low = 0.0f, row_high = 0.0f;
    for (int t = lane; t < T; t += 32) {
      const long k = static_cast<long>(i) * T + t;
      if (mask[k] == 0.0f) continue;
      const GrpoToken tok = grpo_token(lp[k], lp_old[k], a, lo, hi);
      float l = tok.loss;
      if (lp_ref != nullptr) {
        const float kl = k3(lp[k], lp_ref[k]);  // Eq. 4
        l += beta * kl;
        row_kl += kl;
      }
      row_l += l;
      row_n += 1.0f;
      row_low += tok.clipped_low ? 1.0f : 0.0f;
      row_high += tok.clipped_high ? 1.0f : 0.0f;
    }
    row_l = warp_sum(row_l);
    row_n = warp_sum(row_n);
    sum_seq_means += row_l / fmaxf(row_n, 1.0f);  // an empty row contributes 0, not 0/0
    sum_l += row_l;
    sum_kl += warp_sum(row_kl);
    count += row_n;
    low += warp_sum(row_low);
    high += warp_sum(row_high);
  }
  // Across warps: lane 0 of each warp contributes its warp's totals once.
  const bool first = lane == 0;
  sum_seq_means = block_sum(first ? sum_seq_means : 0.0f, scratch);
  sum_l = block_sum(first ? sum_l : 0.0f, scratch);
  sum_kl = block_sum(first ? sum_kl : 0.0f, scratch);
  count = block_sum(first ? count : 0.0f, scratch);
  low = block_sum(first ? low : 0.0f, scratch);
  high = block_sum(first ? high : 0.0f, scratch);
  if (threadIdx.x != 0) return;
  const float den = fmaxf(count, 1.0f);  // an all-masked batch: loss 0, not 0/0 (as trl clamps)
  float loss = 0.0f;
  if (loss_type == static_cast<int>(GRPOLossType::grpo)) loss = sum_seq_means / B;
  else if (loss_type == static_cast<int>(GRPOLossType::dr_grpo))
    loss = sum_l / (static_cast<float>(B) * max_completion_length);
  else loss = sum_l / den;  // bnpo, dapo
  stats[kGrpoLoss] = loss;
  stats[kGrpoKl] = sum_kl / den;
  stats[kGrpoClipLow] = low / den;
  stats[kGrpoClipHigh] = high / den;
  stats[kGrpoClipRatio] = (low + high) / den;
}

// forward was: L = sum_i w_i sum_t m [max(-r A, -clip(r) A) + beta k3],  dr/dlp = r
//   d/dlp = 0 where the clip is active (clip(r) is flat there), else -A r;   d(beta k3)/dlp = beta (1 - exp(x))
__global__ void grpo_loss_backward_kernel1(float* dlp, float dloss, const float* lp, const float* lp_old,
                                           const float* lp_ref, const float* advantages, const float* mask, int B,
                                           int T, float beta, float lo, float hi, int loss_type,
                                           int max_completion_length) {
  STATIC_SHARED(float, scratch, [32]);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;
  // bnpo / dapo weigh every row by 1 / (total token count): count it first (every thread needs it).
  float c = 0.0f;
  for (long k = threadIdx.x; k < static_cast<long>(B) * T; k += blockDim.x) c += mask[k];
  const float total = block_sum(c, scratch);
  for (int i = warp; i < B; i += nwarps) {
    float n = 0.0f;
    for (int t = lane; t < T; t += 32) n += mask[static_cast<long>(i) * T + t];
    n = warp_sum(n);
    float w;  // the aggregation weight of row i
    if (loss_type == static_cast<int>(GRPOLossType::grpo)) w = 1.0f / (B * fmaxf(n, 1.0f));
    else if (loss_type == static_cast<int>(GRPOLossType::dr_grpo))
      w = 1.0f / (static_cast<float>(B) * max_completion_length);
    else w = 1.0f / fmaxf(total, 1.0f);
    const float a = advantages[i];
    for (int t = lane; t < T; t += 32) {
      const long k = static_cast<long>(i) * T + t;
      if (mask[k] == 0.0f) {
        dlp[k] = 0.0f;
        continue;
      }
      const GrpoToken tok = grpo_token(lp[k], lp_old[k], a, lo, hi);
      float d = tok.clipped_low || tok.clipped_high ? 0.0f : -a * tok.r;
      if (lp_ref != nullptr && beta != 0.0f) d += beta * -expm1f(lp_ref[k] - lp[k]);
      dlp[k] = dloss * w * d;
    }
  }
}

// The host-side checks of the CPU op that need no device data (the mask's 0/1 check would need a copy).
static void check_grpo_launch(const float* lp_ref, int B, int T, const GRPOConfig& cfg, int version,
                              const char* where) {
  if (!(cfg.beta >= 0.0)) throw_error(where, ": beta = ", cfg.beta, " must be >= 0");
  if (!(cfg.epsilon > 0.0 && cfg.epsilon < 1.0)) throw_error(where, ": epsilon = ", cfg.epsilon, " must be in (0, 1)");
  if (!(cfg.clip_high() > 0.0)) throw_error(where, ": epsilon_high = ", cfg.clip_high(), " must be > 0");
  if (cfg.max_completion_length < 1)
    throw_error(where, ": max_completion_length = ", cfg.max_completion_length, " must be >= 1");
  if (B < 1) throw_error(where, ": B = ", B, " must be >= 1");
  if (T < 1) throw_error(where, ": T = ", T, " must be >= 1");
  if (lp_ref == nullptr && cfg.beta != 0.0)
    throw_error(where, ": lp_ref is null but beta = ", cfg.beta, " (the KL term needs the reference log-probs)");
  if (version != 0 && version != 1) throw_error(where, ": no kernel version ", version);
}

void grpo_advantages(float* advantages, const float* rewards, int B, const GRPOConfig& cfg, int version) {
  const int G = cfg.num_generations;
  if (G < 2) throw_error("grpo_advantages: num_generations = ", G, " must be >= 2 (a group needs a baseline)");
  if (B < 1 || B % G != 0)
    throw_error("grpo_advantages: B = ", B, " is not a positive multiple of num_generations = ", G);
  if (version != 0 && version != 1) throw_error("grpo_advantages: no kernel version ", version);
  const int groups = B / G;
  launch(grpo_advantages_kernel1, dim3(ceil_div(groups, kGrpoAdvBlock)), dim3(kGrpoAdvBlock), 0, advantages,
         rewards, groups, G, cfg.scale_rewards);
}

void grpo_loss_forward(float* stats, const float* lp, const float* lp_old, const float* lp_ref,
                       const float* advantages, const float* mask, int B, int T, const GRPOConfig& cfg, int version) {
  check_grpo_launch(lp_ref, B, T, cfg, version, "grpo_loss_forward");
  launch(grpo_loss_forward_kernel1, dim3(1), dim3(kGrpoLossBlock), 0, stats, lp, lp_old, lp_ref, advantages, mask,
         B, T, static_cast<float>(cfg.beta), static_cast<float>(1.0 - cfg.epsilon),
         static_cast<float>(1.0 + cfg.clip_high()), static_cast<int>(cfg.loss_type), cfg.max_completion_length);
}

void grpo_loss_backward(float* dlp, double dloss, const float* lp, const float* lp_old, const float* lp_ref,
                        const float* advantages, const float* mask, int B, int T, const GRPOConfig& cfg,
                        int version) {
  check_grpo_launch(lp_ref, B, T, cfg, version, "grpo_loss_backward");
  launch(grpo_loss_backward_kernel1, dim3(1), dim3(kGrpoLossBlock), 0, dlp, static_cast<float>(dloss), lp, lp_old,
         lp_ref, advantages, mask, B, T, static_cast<float>(cfg.beta), static_cast<float>(1.0 - cfg.epsilon),
         static_cast<float>(1.0 + cfg.clip_high()), static_cast<int>(cfg.loss_type), cfg.max_completion_length);
}

}  // namespace tinyds::cuda
