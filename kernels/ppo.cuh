// kernels/ppo.cuh — host launchers of the PPO kernels (kernels/ppo.cu); device pointers.
// Mirrors tinyds/posttrain/losses/ppo.h. Shapes: B sequences, T positions, n = B*T.
#pragma once
#include "tinyds/posttrain/losses/ppo.h"

namespace tinyds::cuda {

// Fields of PPOStats the loss kernel writes, in this order (a float each, on the device).
enum PPOStatIndex { kPpoLoss, kPpoPgLoss, kPpoVfLoss, kPpoPgClipfrac, kPpoVfClipfrac, kPpoApproxKl, kPpoRatioMean,
                    kPpoNumStats };

// rewards (B, T) written: -kl_coef (lp_old - lp_ref) on completion tokens, plus scores[i] on the row's last
// completion token; 0 on masked positions.   lp_old, lp_ref, mask (B, T), scores (B)
// A row without a completion token (an error on the CPU) gets all zeros here: validate masks where they are built.
void ppo_rewards(float* rewards, const float* lp_old, const float* lp_ref, const float* scores, const float* mask,
                 int B, int T, double kl_coef, int version = 0);

// stats (kPpoNumStats, device).   lp, values, lp_old, values_old, advantages, returns, mask (n)
void ppo_loss_forward(float* stats, const float* lp, const float* values, const float* lp_old,
                      const float* values_old, const float* advantages, const float* returns, const float* mask,
                      long n, const PPOConfig& cfg, int version = 0);

// dlp (n), dvalues (n) written.
void ppo_loss_backward(float* dlp, float* dvalues, double dloss, const float* lp, const float* values,
                       const float* lp_old, const float* values_old, const float* advantages, const float* returns,
                       const float* mask, long n, const PPOConfig& cfg, int version = 0);

}  // namespace tinyds::cuda
