// kernels/grpo.cuh — host launchers of the GRPO kernels (kernels/grpo.cu); device pointers.
// Mirrors tinyds/posttrain/losses/grpo.h. Shapes: B sequences in consecutive groups of G = cfg.num_generations, T positions.
#pragma once
#include "tinyds/posttrain/losses/grpo.h"

namespace tinyds::cuda {

// Fields of the GRPOStats the loss kernel writes, in this order (a float each, on the device).
enum GRPOStatIndex { kGrpoLoss, kGrpoKl, kGrpoClipLow, kGrpoClipHigh, kGrpoClipRatio, kGrpoNumStats };

// advantages (B) written from rewards (B). The CPU also returns GRPOGroupStats (degenerate groups, reward mean
// and std); those are diagnostics of B scalars, computed on the host from a copy of the rewards.
void grpo_advantages(float* advantages, const float* rewards, int B, const GRPOConfig& cfg, int version = 0);

// stats (kGrpoNumStats, device) = the loss and diagnostics of grpo_loss_forward.
//   lp, lp_old (B, T), lp_ref (B, T) or nullptr when cfg.beta == 0, advantages (B), mask (B, T) 0/1
void grpo_loss_forward(float* stats, const float* lp, const float* lp_old, const float* lp_ref,
                       const float* advantages, const float* mask, int B, int T, const GRPOConfig& cfg,
                       int version = 0);

// dlp (B, T) written: dloss * w_i m [ (-A_i r, or 0 where the clip is active) + beta (1 - exp(lp_ref - lp)) ].
void grpo_loss_backward(float* dlp, double dloss, const float* lp, const float* lp_old, const float* lp_ref,
                        const float* advantages, const float* mask, int B, int T, const GRPOConfig& cfg,
                        int version = 0);

}  // namespace tinyds::cuda
