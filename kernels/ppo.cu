// kernels/ppo.cu — PPO for language models (Schulman et al. 2017; trl PPOTrainer) on the GPU: KL-penalised
// per-token rewards, the clipped policy and value losses, and their gradients.
// CPU reference: tinyds/posttrain/losses/ppo.h (same names and argument order, device pointers; stats on the device).
// GAE and whitening, the step between rewards and the loss, are in kernels/gae.cu (tinyds/posttrain/losses/gae.h).
//
// Shapes: B sequences, T positions, n = B*T; every per-token tensor (n) or (B, T); scores (B); stats (kPpoNumStats).
//   rewards_t = -kl_coef (lp_old - lp_ref)  (+ score on the last completion token)
//   ratio = exp(lp - lp_old);  pg1 = -A ratio;  pg2 = -A clip(ratio, 1 - eps, 1 + eps)
//   V_clip = clip(V, V_old - eps_v, V_old + eps_v);  vf1 = (V - R)^2;  vf2 = (V_clip - R)^2
//   L = masked mean of max(pg1, pg2) + vf_coef * 0.5 * masked mean of max(vf1, vf2)
// Gradients: dlp, dvalues WRITTEN (=).
//
// Versions (one each):
//   rewards 1: one thread per row: it finds the row's last completion token, which is where the score goes.
//   loss 1, backward 1: ONE block striding over the n tokens, then block reductions (the masked means need the
//              token count before any gradient can be written). One block: no grid-wide synchronisation and a
//              fixed order of additions; an RL batch of ~1e4 tokens is microseconds of work for it.
#include "kernels/common.cuh"
#include "kernels/ppo.cuh"
#include "kernels/reductions.cuh"
#include "tinyds/core/error.h"

namespace tinyds::cuda {

constexpr int kPpoRowsBlock = 128;
constexpr int kPpoLossBlock = 1024;

__global__ void ppo_rewards_kernel1(float* rewards, const float* lp_old, const float* lp_ref, const float* scores,
                                    const float* mask, int B, int T, float kl_coef) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= B) return;
  const long o = static_cast<long>(i) * T;
  int last = -1;
  for (int t = 0; t < T; t++) {
    // the penalty is k1 = lp_old - lp_ref: its expectation under pi_old is KL(pi_old || ref) (kl.h)
    rewards[o + t] = mask[o + t] == 0.0f ? 0.0f : -kl_coef * (lp_old[o + t] - lp_ref[o + t]);
    if (mask[o + t] != 0.0f) last = t;
  }
  if (last >= 0) rewards[o + last] += scores[i];
}

// The two clipped terms of one token, shared by forward and backward so they pick the same branches.
struct PpoToken {
  float ratio, pg1, pg2, vf1, vf2;
};
__device__ __forceinline__ PpoToken ppo_token(float lp, float v, float lp_old, float v_old, float a, float ret,
                                              float eps, float eps_v) {
  PpoToken k;
  k.ratio = expf(lp - lp_old);
  k.pg1 = -a * k.ratio;
  k.pg2 = -a * fminf(fmaxf(k.ratio, 1.0f - eps), 1.0f + eps);
  const float v_clip = fminf(fmaxf(v, v_old - eps_v), v_old + eps_v);
  k.vf1 = (v - ret) * (v - ret);
  k.vf2 = (v_clip - ret) * (v_clip - ret);
  return k;
}

__global__ void ppo_loss_forward_kernel1(float* stats, const float* lp, const float* values, const float* lp_old,
                                         const float* values_old, const float* advantages, const float* returns,
                                         const float* mask, long n, float eps, float eps_v, float vf_coef) {
  STATIC_SHARED(float, scratch, [32]);
  float pg = 0.0f, vf = 0.0f, pg_clip = 0.0f, vf_clip = 0.0f, kl = 0.0f, ratio = 0.0f, count = 0.0f;
  for (long i = threadIdx.x; i < n; i += blockDim.x) {
    if (mask[i] == 0.0f) continue;
    const PpoToken k = ppo_token(lp[i], values[i], lp_old[i], values_old[i], advantages[i], returns[i], eps, eps_v);
    pg += fmaxf(k.pg1, k.pg2);  // pessimistic: the larger loss, i.e. the min of the surrogate objectives
    vf += fmaxf(k.vf1, k.vf2);
    pg_clip += k.pg2 > k.pg1 ? 1.0f : 0.0f;
    vf_clip += k.vf2 > k.vf1 ? 1.0f : 0.0f;
    const float d = lp[i] - lp_old[i];
    kl += 0.5f * d * d;  // trl's approxkl (the k2 estimator)
    ratio += k.ratio;
    count += 1.0f;
  }
  pg = block_sum(pg, scratch);
  vf = block_sum(vf, scratch);
  pg_clip = block_sum(pg_clip, scratch);
  vf_clip = block_sum(vf_clip, scratch);
  kl = block_sum(kl, scratch);
  ratio = block_sum(ratio, scratch);
  count = block_sum(count, scratch);
  if (threadIdx.x != 0) return;
  const float den = fmaxf(count, 1.0f);  // an all-masked batch: loss 0, not 0/0
  stats[kPpoPgLoss] = pg / den;
  stats[kPpoVfLoss] = 0.5f * vf / den;
  stats[kPpoLoss] = pg / den + vf_coef * (0.5f * vf / den);
  stats[kPpoPgClipfrac] = pg_clip / den;
  stats[kPpoVfClipfrac] = vf_clip / den;
  stats[kPpoApproxKl] = kl / den;
  stats[kPpoRatioMean] = ratio / den;
}

// forward was: L = (1/den) sum_i m_i [max(pg1, pg2) + vf_coef 0.5 max(vf1, vf2)]
//   pg2 > pg1 only where the ratio is clipped (flat): gradient 0; else d pg1 / d lp = -A ratio.
//   vf2 > vf1 only where V is clipped (flat in V): gradient 0; else d vf1 / dV = 2 (V - R).
__global__ void ppo_loss_backward_kernel1(float* dlp, float* dvalues, float dloss, const float* lp,
                                          const float* values, const float* lp_old, const float* values_old,
                                          const float* advantages, const float* returns, const float* mask, long n,
                                          float eps, float eps_v, float vf_coef) {
  STATIC_SHARED(float, scratch, [32]);
  float c = 0.0f;
  for (long i = threadIdx.x; i < n; i += blockDim.x) c += mask[i];
  const float g = dloss / fmaxf(block_sum(c, scratch), 1.0f);  // d(masked mean) / d(term) = 1 / count
  for (long i = threadIdx.x; i < n; i += blockDim.x) {
    if (mask[i] == 0.0f) {
      dlp[i] = 0.0f;
      dvalues[i] = 0.0f;
      continue;
    }
    const PpoToken k = ppo_token(lp[i], values[i], lp_old[i], values_old[i], advantages[i], returns[i], eps, eps_v);
    const float dpg = k.pg2 > k.pg1 ? 0.0f : -advantages[i] * k.ratio;
    const float dvf = k.vf2 > k.vf1 ? 0.0f : 2.0f * (values[i] - returns[i]);
    dlp[i] = g * dpg;
    dvalues[i] = g * vf_coef * 0.5f * dvf;
  }
}

static void check_ppo_launch(const PPOConfig& cfg, int version, const char* where) {
  if (!(cfg.cliprange > 0.0 && cfg.cliprange < 1.0))
    throw_error(where, ": cliprange = ", cfg.cliprange, " must be in (0, 1)");
  if (!(cfg.cliprange_value > 0.0)) throw_error(where, ": cliprange_value = ", cfg.cliprange_value, " must be > 0");
  if (!(cfg.vf_coef >= 0.0)) throw_error(where, ": vf_coef = ", cfg.vf_coef, " must be >= 0");
  if (version != 0 && version != 1) throw_error(where, ": no kernel version ", version);
}

void ppo_rewards(float* rewards, const float* lp_old, const float* lp_ref, const float* scores, const float* mask,
                 int B, int T, double kl_coef, int version) {
  if (B < 1) throw_error("ppo_rewards: B = ", B, " must be >= 1");
  if (T < 1) throw_error("ppo_rewards: T = ", T, " must be >= 1");
  if (!(kl_coef >= 0.0)) throw_error("ppo_rewards: kl_coef = ", kl_coef, " must be >= 0");
  if (version != 0 && version != 1) throw_error("ppo_rewards: no kernel version ", version);
  launch(ppo_rewards_kernel1, dim3(ceil_div(B, kPpoRowsBlock)), dim3(kPpoRowsBlock), 0, rewards, lp_old, lp_ref,
         scores, mask, B, T, static_cast<float>(kl_coef));
}

void ppo_loss_forward(float* stats, const float* lp, const float* values, const float* lp_old,
                      const float* values_old, const float* advantages, const float* returns, const float* mask,
                      long n, const PPOConfig& cfg, int version) {
  check_ppo_launch(cfg, version, "ppo_loss_forward");
  if (n < 0) throw_error("ppo_loss_forward: n = ", n, " must be >= 0");
  launch(ppo_loss_forward_kernel1, dim3(1), dim3(kPpoLossBlock), 0, stats, lp, values, lp_old, values_old,
         advantages, returns, mask, n, static_cast<float>(cfg.cliprange), static_cast<float>(cfg.cliprange_value),
         static_cast<float>(cfg.vf_coef));
}

void ppo_loss_backward(float* dlp, float* dvalues, double dloss, const float* lp, const float* values,
                       const float* lp_old, const float* values_old, const float* advantages, const float* returns,
                       const float* mask, long n, const PPOConfig& cfg, int version) {
  check_ppo_launch(cfg, version, "ppo_loss_backward");
  if (n < 0) throw_error("ppo_loss_backward: n = ", n, " must be >= 0");
  launch(ppo_loss_backward_kernel1, dim3(1), dim3(kPpoLossBlock), 0, dlp, dvalues, static_cast<float>(dloss), lp,
         values, lp_old, values_old, advantages, returns, mask, n, static_cast<float>(cfg.cliprange),
         static_cast<float>(cfg.cliprange_value), static_cast<float>(cfg.vf_coef));
}

}  // namespace tinyds::cuda
