// tinyds/posttrain/losses/ppo.cpp — PPO per-token rewards and the clipped policy + value loss (see ppo.h).
//
// Shapes: B sequences, T positions, n = B*T.  Gradients: dlp, dvalues WRITTEN (=).
#include "tinyds/posttrain/losses/ppo.h"

#include <algorithm>
#include <cmath>

#include "tinyds/core/error.h"
#include "tinyds/posttrain/losses/kl.h"
#include "tinyds/posttrain/losses/mask.h"

namespace tinyds {

template <typename real>
void ppo_rewards(real* rewards,       // (B, T) written
                 const real* lp_old,  // (B, T) sampling policy
                 const real* lp_ref,  // (B, T) frozen reference
                 const real* scores,  // (B) reward model / rule score of each completion
                 const real* mask,    // (B, T)
                 int B, int T, double kl_coef) {
  if (B < 1) throw_error("ppo_rewards: B = ", B, " must be >= 1");
  if (T < 1) throw_error("ppo_rewards: T = ", T, " must be >= 1");
  if (!(kl_coef >= 0.0)) throw_error("ppo_rewards: kl_coef = ", kl_coef, " must be >= 0");
  detail::check_mask(mask, static_cast<long>(B) * T, "ppo_rewards", "mask");
  for (int i = 0; i < B; i++) {
    const long o = static_cast<long>(i) * T;
    int last = -1;
    for (int t = 0; t < T; t++) {
      if (mask[o + t] == real(0)) {
        rewards[o + t] = real(0);
        continue;
      }
      // the penalty is k1 = lp_old - lp_ref: its expectation under pi_old is KL(pi_old || ref) (kl.h)
      rewards[o + t] = static_cast<real>(-kl_coef * kl_estimate(lp_old[o + t], lp_ref[o + t], KLEstimator::k1));
      last = t;
    }
    if (last < 0) throw_error("ppo_rewards: row ", i, " of mask has no completion token to put scores[", i, "] on");
    rewards[o + last] = static_cast<real>(static_cast<double>(rewards[o + last]) + static_cast<double>(scores[i]));
  }
}

static void check_ppo_config(const PPOConfig& cfg, const char* where) {
  if (!(cfg.cliprange > 0.0 && cfg.cliprange < 1.0))
    throw_error(where, ": cliprange = ", cfg.cliprange, " must be in (0, 1)");
  if (!(cfg.cliprange_value > 0.0)) throw_error(where, ": cliprange_value = ", cfg.cliprange_value, " must be > 0");
  if (!(cfg.vf_coef >= 0.0)) throw_error(where, ": vf_coef = ", cfg.vf_coef, " must be >= 0");
}

// The two clipped terms of one token, shared by forward and backward so they pick the same branches.
struct PPOToken {
  double ratio, pg1, pg2;  // ratio = exp(lp - lp_old); pg1 = -A ratio; pg2 = -A clip(ratio, 1 -+ eps)
  double v_clip, vf1, vf2;  // v_clip = clip(V, V_old -+ eps_v); vf1 = (V - R)^2; vf2 = (v_clip - R)^2
};

static PPOToken ppo_token(double lp, double v, double lp_old, double v_old, double a, double ret,
                          const PPOConfig& cfg) {
  PPOToken k;
  k.ratio = std::exp(lp - lp_old);
  k.pg1 = -a * k.ratio;
  k.pg2 = -a * std::clamp(k.ratio, 1.0 - cfg.cliprange, 1.0 + cfg.cliprange);
  k.v_clip = std::clamp(v, v_old - cfg.cliprange_value, v_old + cfg.cliprange_value);
  k.vf1 = (v - ret) * (v - ret);
  k.vf2 = (k.v_clip - ret) * (k.v_clip - ret);
  return k;
}

template <typename real>
PPOStats ppo_loss_forward(const real* lp,          // (n) current policy
                          const real* values,      // (n) current critic
                          const real* lp_old,      // (n) rollout policy
                          const real* values_old,  // (n) rollout critic
                          const real* advantages,  // (n) whitened GAE advantages
                          const real* returns,     // (n) GAE returns (value targets)
                          const real* mask,        // (n)
                          long n, const PPOConfig& cfg) {
  check_ppo_config(cfg, "ppo_loss_forward");
  detail::check_mask(mask, n, "ppo_loss_forward", "mask");
  PPOStats st;
  for (long i = 0; i < n; i++) {
    if (mask[i] == real(0)) continue;
    const PPOToken k = ppo_token(lp[i], values[i], lp_old[i], values_old[i], advantages[i], returns[i], cfg);
    st.pg_loss += std::max(k.pg1, k.pg2);  // pessimistic: the larger loss, i.e. min of the surrogate objectives
    st.vf_loss += std::max(k.vf1, k.vf2);
    st.pg_clipfrac += k.pg2 > k.pg1 ? 1.0 : 0.0;
    st.vf_clipfrac += k.vf2 > k.vf1 ? 1.0 : 0.0;
    const double d = static_cast<double>(lp[i]) - static_cast<double>(lp_old[i]);
    st.approxkl += 0.5 * d * d;
    st.ratio_mean += k.ratio;
  }
  const double den = detail::mean_denominator(detail::mask_count(mask, n));
  st.pg_loss /= den;
  st.vf_loss = 0.5 * st.vf_loss / den;
  st.pg_clipfrac /= den;
  st.vf_clipfrac /= den;
  st.approxkl /= den;
  st.ratio_mean /= den;
  st.loss = st.pg_loss + cfg.vf_coef * st.vf_loss;
  return st;
}

// forward was: L = (1/den) sum_i m_i [max(pg1, pg2) + vf_coef * 0.5 * max(vf1, vf2)]
//   policy: pg1 = -A ratio, d ratio / d lp = ratio. If pg2 > pg1 the clipped term is the max; that can only happen
//     with ratio outside [1 - eps, 1 + eps] (inside, clip(ratio) = ratio and pg1 == pg2), where clip is flat:
//     gradient 0. Otherwise the gradient is d pg1 / d lp = -A ratio.
//   value: likewise, vf2 > vf1 only when V is clipped (flat in V): gradient 0; else d vf1 / dV = 2 (V - R).
template <typename real>
void ppo_loss_backward(real* dlp,               // (n) written
                       real* dvalues,           // (n) written
                       double dloss,            // dL_total / dL
                       const real* lp,          // (n)
                       const real* values,      // (n)
                       const real* lp_old,      // (n)
                       const real* values_old,  // (n)
                       const real* advantages,  // (n)
                       const real* returns,     // (n)
                       const real* mask,        // (n)
                       long n, const PPOConfig& cfg) {
  check_ppo_config(cfg, "ppo_loss_backward");
  detail::check_mask(mask, n, "ppo_loss_backward", "mask");
  const double g = dloss / detail::mean_denominator(detail::mask_count(mask, n));
  for (long i = 0; i < n; i++) {
    if (mask[i] == real(0)) {
      dlp[i] = real(0);
      dvalues[i] = real(0);
      continue;
    }
    const PPOToken k = ppo_token(lp[i], values[i], lp_old[i], values_old[i], advantages[i], returns[i], cfg);
    const double dpg = k.pg2 > k.pg1 ? 0.0 : -static_cast<double>(advantages[i]) * k.ratio;
    const double dvf = k.vf2 > k.vf1 ? 0.0 : 2.0 * (static_cast<double>(values[i]) - returns[i]);
    dlp[i] = static_cast<real>(g * dpg);
    dvalues[i] = static_cast<real>(g * cfg.vf_coef * 0.5 * dvf);
  }
}

template void ppo_rewards<float>(float*, const float*, const float*, const float*, const float*, int, int, double);
template void ppo_rewards<double>(double*, const double*, const double*, const double*, const double*, int, int,
                                  double);
template PPOStats ppo_loss_forward<float>(const float*, const float*, const float*, const float*, const float*,
                                          const float*, const float*, long, const PPOConfig&);
template PPOStats ppo_loss_forward<double>(const double*, const double*, const double*, const double*,
                                           const double*, const double*, const double*, long, const PPOConfig&);
template void ppo_loss_backward<float>(float*, float*, double, const float*, const float*, const float*,
                                       const float*, const float*, const float*, const float*, long,
                                       const PPOConfig&);
template void ppo_loss_backward<double>(double*, double*, double, const double*, const double*, const double*,
                                        const double*, const double*, const double*, const double*, long,
                                        const PPOConfig&);

}  // namespace tinyds
