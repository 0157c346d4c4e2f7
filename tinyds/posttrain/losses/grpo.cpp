// tinyds/posttrain/losses/grpo.cpp — GRPO group advantages and the clipped, KL-regularised, aggregated loss (see grpo.h).
//
// Shapes: B sequences in groups of G = num_generations, T positions.  Gradients: dlp WRITTEN (=).
#include "tinyds/posttrain/losses/grpo.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/posttrain/losses/kl.h"
#include "tinyds/posttrain/losses/mask.h"

namespace tinyds {

const char* grpo_loss_type_name(GRPOLossType t) {
  switch (t) {
    case GRPOLossType::grpo: return "grpo";
    case GRPOLossType::bnpo: return "bnpo";
    case GRPOLossType::dapo: return "dapo";
    case GRPOLossType::dr_grpo: return "dr_grpo";
  }
  return "?";
}

static void check_grpo_config(const GRPOConfig& cfg, const char* where) {
  if (!(cfg.beta >= 0.0)) throw_error(where, ": beta = ", cfg.beta, " must be >= 0");
  if (!(cfg.epsilon > 0.0 && cfg.epsilon < 1.0)) throw_error(where, ": epsilon = ", cfg.epsilon, " must be in (0, 1)");
  if (!(cfg.clip_high() > 0.0)) throw_error(where, ": epsilon_high = ", cfg.clip_high(), " must be > 0");
  if (cfg.num_generations < 2)
    throw_error(where, ": num_generations = ", cfg.num_generations, " must be >= 2 (a group needs a baseline)");
  if (cfg.max_completion_length < 1)
    throw_error(where, ": max_completion_length = ", cfg.max_completion_length, " must be >= 1");
  switch (cfg.loss_type) {
    case GRPOLossType::grpo: case GRPOLossType::bnpo: case GRPOLossType::dapo: case GRPOLossType::dr_grpo: break;
    default: throw_error(where, ": loss_type = ", static_cast<int>(cfg.loss_type), " is not grpo/bnpo/dapo/dr_grpo");
  }
}

template <typename real>
GRPOGroupStats grpo_advantages(real* advantages,    // (B) written
                               const real* rewards,  // (B) one scalar reward per completion
                               int B, const GRPOConfig& cfg) {
  check_grpo_config(cfg, "grpo_advantages");
  const int G = cfg.num_generations;
  if (B < 1 || B % G != 0)
    throw_error("grpo_advantages: B = ", B, " is not a positive multiple of num_generations = ", G);
  GRPOGroupStats st;
  st.num_groups = B / G;
  for (int g = 0; g < st.num_groups; g++) {
    const real* R = rewards + static_cast<long>(g) * G;
    real* A = advantages + static_cast<long>(g) * G;
    double mean = 0.0;
    for (int j = 0; j < G; j++) mean += static_cast<double>(R[j]);
    mean /= G;
    double ss = 0.0;
    for (int j = 0; j < G; j++) ss += (R[j] - mean) * (R[j] - mean);
    const double std = std::sqrt(ss / (G - 1));  // unbiased, as torch.std (trl)
    st.reward_mean += mean / st.num_groups;  // equal-size groups: the mean of group means is the batch mean
    st.reward_std += std / st.num_groups;
    // Degenerate: all rewards equal. Set A = 0 exactly: R - mean may be a rounding residue (3 x 0.1 / 3 != 0.1),
    // which divided by std + 1e-4 would be a tiny spurious signal.
    if (std::all_of(R, R + G, [&](real r) { return r == R[0]; })) {
      st.degenerate_groups++;
      std::fill(A, A + G, real(0));
      continue;
    }
    // 1e-4 as trl: keeps A bounded when the group's rewards are nearly equal
    const double scale = cfg.scale_rewards ? 1.0 / (std + 1e-4) : 1.0;
    for (int j = 0; j < G; j++) A[j] = static_cast<real>((R[j] - mean) * scale);
  }
  return st;
}

// The aggregation weight w_i of row i: L = sum_i w_i sum_t m[i, t] l[i, t].
template <typename real>
static std::vector<double> row_weights(const real* mask, int B, int T, const GRPOConfig& cfg) {
  std::vector<double> w(B);
  const double total = detail::mask_count(mask, static_cast<long>(B) * T);
  for (int i = 0; i < B; i++) {
    const double n_i = detail::mask_count(mask + static_cast<long>(i) * T, T);
    switch (cfg.loss_type) {
      case GRPOLossType::grpo: w[i] = 1.0 / (B * detail::mean_denominator(n_i)); break;
      case GRPOLossType::bnpo:
      case GRPOLossType::dapo: w[i] = 1.0 / detail::mean_denominator(total); break;
      case GRPOLossType::dr_grpo: w[i] = 1.0 / (static_cast<double>(B) * cfg.max_completion_length); break;
    }
  }
  return w;
}

template <typename real>
static void check_grpo_loss_args(const real* lp_ref, const real* mask, int B, int T, const GRPOConfig& cfg,
                                 const char* where) {
  check_grpo_config(cfg, where);
  if (B < 1) throw_error(where, ": B = ", B, " must be >= 1");
  if (T < 1) throw_error(where, ": T = ", T, " must be >= 1");
  if (lp_ref == nullptr && cfg.beta != 0.0)
    throw_error(where, ": lp_ref is null but beta = ", cfg.beta, " (the KL term needs the reference log-probs)");
  detail::check_mask(mask, static_cast<long>(B) * T, where, "mask");
}

template <typename real>
GRPOStats grpo_loss_forward(const real* lp,          // (B, T) current policy
                            const real* lp_old,      // (B, T) policy that sampled the completions
                            const real* lp_ref,      // (B, T) reference, or nullptr when beta == 0
                            const real* advantages,  // (B) from grpo_advantages
                            const real* mask,        // (B, T)
                            int B, int T, const GRPOConfig& cfg) {
  check_grpo_loss_args(lp_ref, mask, B, T, cfg, "grpo_loss_forward");
  const std::vector<double> w = row_weights(mask, B, T, cfg);
  const double lo = 1.0 - cfg.epsilon, hi = 1.0 + cfg.clip_high();
  GRPOStats st;
  for (int i = 0; i < B; i++) {
    const double a = advantages[i];
    for (int t = 0; t < T; t++) {
      const long k = static_cast<long>(i) * T + t;
      if (mask[k] == real(0)) continue;
      const double r = std::exp(static_cast<double>(lp[k]) - static_cast<double>(lp_old[k]));
      double l = -std::min(r * a, std::clamp(r, lo, hi) * a);  // DeepSeekMath Eq. 3, pessimistic surrogate
      if (lp_ref != nullptr) {
        const double kl = kl_estimate(lp[k], lp_ref[k], KLEstimator::k3);  // Eq. 4
        l += cfg.beta * kl;
        st.kl += kl;
      }
      st.loss += w[i] * l;
      st.clip_ratio_low += (r < lo && a < 0.0) ? 1.0 : 0.0;
      st.clip_ratio_high += (r > hi && a > 0.0) ? 1.0 : 0.0;
    }
  }
  const double den = detail::mean_denominator(detail::mask_count(mask, static_cast<long>(B) * T));
  st.kl /= den;
  st.clip_ratio_low /= den;
  st.clip_ratio_high /= den;
  st.clip_ratio = st.clip_ratio_low + st.clip_ratio_high;
  return st;
}

// forward was: L = sum_i w_i sum_t m [-min(r A, clip(r) A) + beta k3],  r = exp(lp - lp_old), dr/dlp = r
//   -min(r A, clip(r) A) = max(-r A, -clip(r) A). The clipped term is strictly larger only when the clip is active
//   (A > 0 and r > 1 + epsilon_high, or A < 0 and r < 1 - epsilon), where clip(r) is flat: gradient 0.
//   Otherwise the gradient is -A r.   d(beta k3)/dlp = beta (1 - exp(lp_ref - lp))  (kl_estimate_dlp)
template <typename real>
void grpo_loss_backward(real* dlp,               // (B, T) written
                        double dloss,            // dL_total / dL
                        const real* lp,          // (B, T)
                        const real* lp_old,      // (B, T)
                        const real* lp_ref,      // (B, T) or nullptr when beta == 0
                        const real* advantages,  // (B)
                        const real* mask,        // (B, T)
                        int B, int T, const GRPOConfig& cfg) {
  check_grpo_loss_args(lp_ref, mask, B, T, cfg, "grpo_loss_backward");
  const std::vector<double> w = row_weights(mask, B, T, cfg);
  const double lo = 1.0 - cfg.epsilon, hi = 1.0 + cfg.clip_high();
  for (int i = 0; i < B; i++) {
    const double a = advantages[i];
    for (int t = 0; t < T; t++) {
      const long k = static_cast<long>(i) * T + t;
      if (mask[k] == real(0)) {
        dlp[k] = real(0);
        continue;
      }
      const double r = std::exp(static_cast<double>(lp[k]) - static_cast<double>(lp_old[k]));
      const bool clipped = (a > 0.0 && r > hi) || (a < 0.0 && r < lo);
      double d = clipped ? 0.0 : -a * r;
      if (lp_ref != nullptr && cfg.beta != 0.0) d += cfg.beta * kl_estimate_dlp(lp[k], lp_ref[k], KLEstimator::k3);
      dlp[k] = static_cast<real>(dloss * w[i] * d);
    }
  }
}

template GRPOGroupStats grpo_advantages<float>(float*, const float*, int, const GRPOConfig&);
template GRPOGroupStats grpo_advantages<double>(double*, const double*, int, const GRPOConfig&);
template GRPOStats grpo_loss_forward<float>(const float*, const float*, const float*, const float*, const float*,
                                            int, int, const GRPOConfig&);
template GRPOStats grpo_loss_forward<double>(const double*, const double*, const double*, const double*,
                                             const double*, int, int, const GRPOConfig&);
template void grpo_loss_backward<float>(float*, double, const float*, const float*, const float*, const float*,
                                        const float*, int, int, const GRPOConfig&);
template void grpo_loss_backward<double>(double*, double, const double*, const double*, const double*,
                                         const double*, const double*, int, int, const GRPOConfig&);

}  // namespace tinyds
