// tinyds/device/losses.h — the post-training losses' ops on this thread's current device (tinyds/device/device.h):
// the CPU reference of tinyds/posttrain/losses/ or the kernel of kernels/ with the same name and arguments (the
// pattern of tinyds/device/ops.h). Reading map: posttrain/losses/<op>.cpp (CPU) <-> kernels/<op>.cu (CUDA).
//
// Shapes: N rows (B*T token positions), V vocab, B sequences in groups of G, T positions; every pointer is in the
// current device's memory.
//   logprobs_forward / _backward, entropy_forward     logprobs.h  <->  logprobs.cu
//   kl_forward / kl_backward                          kl.h        <->  kl.cu
//   grpo_advantages, grpo_loss_forward / _backward    grpo.h      <->  grpo.cu
// Where the CPU op returns statistics (grpo_advantages' group stats, grpo_loss_forward's loss and clip fractions),
// the kernels leave them in device memory or not at all: these functions return them on the host, as the CPU does
// (the loss stats are copied back; the group stats are the CPU's, from the host copy of the rewards the caller
// passes, B scalars). The kernels' float stats agree with the CPU's double ones to float rounding.
#pragma once

#include <type_traits>
#include <vector>

#include "kernels/grpo.cuh"
#include "kernels/kl.cuh"
#include "kernels/logprobs.cuh"
#include "tinyds/core/ledger.h"
#include "tinyds/device/memory.h"
#include "tinyds/device/ops.h"
#include "tinyds/posttrain/losses/grpo.h"
#include "tinyds/posttrain/losses/kl.h"
#include "tinyds/posttrain/losses/logprobs.h"

namespace tinyds::dev {

// losses/logprobs.h  <->  kernels/logprobs.cu
template <typename real>
inline void logprobs_forward(real* lp, const real* logits, const int* targets, int N, int V, double temperature) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>()) return cuda::logprobs_forward(lp, logits, targets, N, V, temperature);
  }
  tinyds::logprobs_forward(lp, logits, targets, N, V, temperature);
}
template <typename real>
inline void logprobs_backward(real* dlogits, const real* dlp, const real* logits, const int* targets, int N, int V,
                              double temperature) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>()) return cuda::logprobs_backward(dlogits, dlp, logits, targets, N, V, temperature);
  }
  tinyds::logprobs_backward(dlogits, dlp, logits, targets, N, V, temperature);
}
template <typename real>
inline void entropy_forward(real* entropy, const real* logits, const int* targets, int N, int V, double temperature) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>()) return cuda::entropy_forward(entropy, logits, targets, N, V, temperature);
  }
  tinyds::entropy_forward(entropy, logits, targets, N, V, temperature);
}

// losses/kl.h  <->  kernels/kl.cu
template <typename real>
inline void kl_forward(real* kl, const real* lp, const real* lp_ref, long n, KLEstimator estimator) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>()) return cuda::kl_forward(kl, lp, lp_ref, n, estimator);
  }
  tinyds::kl_forward(kl, lp, lp_ref, n, estimator);
}
template <typename real>
inline void kl_backward(real* dlp, const real* dkl, const real* lp, const real* lp_ref, long n, KLEstimator estimator) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>()) return cuda::kl_backward(dlp, dkl, lp, lp_ref, n, estimator);
  }
  tinyds::kl_backward(dlp, dkl, lp, lp_ref, n, estimator);
}

// losses/grpo.h  <->  kernels/grpo.cu. advantages, rewards (B) on the device; rewards_host (B) the same rewards on
// the host, where the group statistics are computed on cuda (the kernel returns none).
inline GRPOGroupStats grpo_advantages(float* advantages, const float* rewards, const float* rewards_host, int B,
                                      const GRPOConfig& cfg) {
  if (!on_cuda<float>()) return tinyds::grpo_advantages(advantages, rewards, B, cfg);
  cuda::grpo_advantages(advantages, rewards, B, cfg);
  std::vector<float> host_advantages(B);  // the CPU's pass for its statistics only; the kernel's advantages are used
  return tinyds::grpo_advantages(host_advantages.data(), rewards_host, B, cfg);
}

// The loss and its diagnostics on the host. On cuda the kernel writes them to kGrpoNumStats device floats.
inline GRPOStats grpo_loss_forward(const float* lp, const float* lp_old, const float* lp_ref, const float* advantages,
                                   const float* mask, int B, int T, const GRPOConfig& cfg) {
  if (!on_cuda<float>()) return tinyds::grpo_loss_forward(lp, lp_old, lp_ref, advantages, mask, B, T, cfg);
  Buffer<float> stats(cuda::kGrpoNumStats, Role::policy, Category::activations, Place::device);
  cuda::grpo_loss_forward(stats.data(), lp, lp_old, lp_ref, advantages, mask, B, T, cfg);
  float host[cuda::kGrpoNumStats];
  to_host(host, stats.data(), cuda::kGrpoNumStats);
  GRPOStats s;
  s.loss = host[cuda::kGrpoLoss];
  s.kl = host[cuda::kGrpoKl];
  s.clip_ratio_low = host[cuda::kGrpoClipLow];
  s.clip_ratio_high = host[cuda::kGrpoClipHigh];
  s.clip_ratio = host[cuda::kGrpoClipRatio];
  return s;
}
inline void grpo_loss_backward(float* dlp, double dloss, const float* lp, const float* lp_old, const float* lp_ref,
                               const float* advantages, const float* mask, int B, int T, const GRPOConfig& cfg) {
  if (on_cuda<float>()) return cuda::grpo_loss_backward(dlp, dloss, lp, lp_old, lp_ref, advantages, mask, B, T, cfg);
  tinyds::grpo_loss_backward(dlp, dloss, lp, lp_old, lp_ref, advantages, mask, B, T, cfg);
}

}  // namespace tinyds::dev
