// tinyds/posttrain/losses/reinforce.cpp — REINFORCE with the group-mean baseline (see reinforce.h).
//
// Shapes: B sequences, T positions.  Gradients: dlp WRITTEN (=).
#include "tinyds/posttrain/losses/reinforce.h"

#include "tinyds/core/error.h"
#include "tinyds/posttrain/losses/grpo.h"
#include "tinyds/posttrain/losses/mask.h"

namespace tinyds {

template <typename real>
int reinforce_advantages(real* advantages,    // (B) written
                         const real* rewards,  // (B)
                         int B, int G) {
  GRPOConfig cfg;
  cfg.num_generations = G;
  cfg.scale_rewards = false;  // the baseline only: A = R - group mean
  return grpo_advantages(advantages, rewards, B, cfg).degenerate_groups;
}

static void check_reinforce_args(int B, int T, const char* where) {
  if (B < 1) throw_error(where, ": B = ", B, " must be >= 1");
  if (T < 1) throw_error(where, ": T = ", T, " must be >= 1");
}

template <typename real>
double reinforce_loss_forward(const real* lp,          // (B, T)
                              const real* advantages,  // (B)
                              const real* mask,        // (B, T)
                              int B, int T) {
  check_reinforce_args(B, T, "reinforce_loss_forward");
  detail::check_mask(mask, static_cast<long>(B) * T, "reinforce_loss_forward", "mask");
  double loss = 0.0;
  for (int i = 0; i < B; i++) {
    double seq_lp = 0.0;  // log pi(completion i) = sum of its tokens' log-probs
    for (int t = 0; t < T; t++) {
      const long k = static_cast<long>(i) * T + t;
      seq_lp += static_cast<double>(mask[k]) * static_cast<double>(lp[k]);
    }
    loss -= static_cast<double>(advantages[i]) * seq_lp;
  }
  return loss / B;
}

// forward was: L = -(1/B) sum_i A_i sum_t m lp   =>   dL/dlp[i, t] = -A_i m[i, t] / B
template <typename real>
void reinforce_loss_backward(real* dlp,               // (B, T) written
                             double dloss,            // dL_total / dL
                             const real* advantages,  // (B)
                             const real* mask,        // (B, T)
                             int B, int T) {
  check_reinforce_args(B, T, "reinforce_loss_backward");
  detail::check_mask(mask, static_cast<long>(B) * T, "reinforce_loss_backward", "mask");
  for (int i = 0; i < B; i++)
    for (int t = 0; t < T; t++) {
      const long k = static_cast<long>(i) * T + t;
      dlp[k] = static_cast<real>(-dloss * static_cast<double>(advantages[i]) * static_cast<double>(mask[k]) / B);
    }
}

template int reinforce_advantages<float>(float*, const float*, int, int);
template int reinforce_advantages<double>(double*, const double*, int, int);
template double reinforce_loss_forward<float>(const float*, const float*, const float*, int, int);
template double reinforce_loss_forward<double>(const double*, const double*, const double*, int, int);
template void reinforce_loss_backward<float>(float*, double, const float*, const float*, int, int);
template void reinforce_loss_backward<double>(double*, double, const double*, const double*, int, int);

}  // namespace tinyds
