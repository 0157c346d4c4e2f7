// tinyds/posttrain/losses/gae.cpp — GAE over masked rows and masked whitening (see gae.h).
//
// Shapes: B sequences, T positions.
#include "tinyds/posttrain/losses/gae.h"

#include <cmath>

#include "tinyds/core/error.h"
#include "tinyds/posttrain/losses/mask.h"

namespace tinyds {

template <typename real>
void compute_gae(real* advantages,     // (B, T) written
                 real* returns,        // (B, T) written
                 const real* rewards,  // (B, T) per-token rewards (ppo_rewards)
                 const real* values,   // (B, T) critic's V_t
                 const real* mask,     // (B, T) 1 = completion token
                 int B, int T, double gamma, double lam) {
  if (B < 1) throw_error("compute_gae: B = ", B, " must be >= 1");
  if (T < 1) throw_error("compute_gae: T = ", T, " must be >= 1");
  if (!(gamma >= 0.0 && gamma <= 1.0)) throw_error("compute_gae: gamma = ", gamma, " must be in [0, 1]");
  if (!(lam >= 0.0 && lam <= 1.0)) throw_error("compute_gae: lam = ", lam, " must be in [0, 1]");
  detail::check_mask(mask, static_cast<long>(B) * T, "compute_gae", "mask");
  for (int i = 0; i < B; i++) {
    const long o = static_cast<long>(i) * T;
    double next_value = 0.0;  // V_{t+1}: 0 after the last completion token (terminal state)
    double next_adv = 0.0;    // A_{t+1}: 0 after the last completion token
    for (int t = T - 1; t >= 0; t--) {
      if (mask[o + t] == real(0)) {  // not a step: skipped, and it does not break the chain
        advantages[o + t] = real(0);
        returns[o + t] = real(0);
        continue;
      }
      const double v = values[o + t];
      const double delta = static_cast<double>(rewards[o + t]) + gamma * next_value - v;  // TD error
      const double a = delta + gamma * lam * next_adv;
      advantages[o + t] = static_cast<real>(a);
      returns[o + t] = static_cast<real>(a + v);
      next_value = v;
      next_adv = a;
    }
  }
}

template <typename real>
void masked_whiten(real* out,         // (n) written
                   const real* x,     // (n)
                   const real* mask,  // (n)
                   long n, bool shift_mean) {
  detail::check_mask(mask, n, "masked_whiten", "mask");
  const double count = detail::mask_count(mask, n);
  if (count < 2.0)
    throw_error("masked_whiten: ", count, " unmasked positions; the unbiased variance needs at least 2");
  double mean = 0.0;
  for (long i = 0; i < n; i++) mean += static_cast<double>(mask[i]) * static_cast<double>(x[i]);
  mean /= count;
  double ss = 0.0;
  for (long i = 0; i < n; i++) {
    const double c = static_cast<double>(x[i]) - mean;
    ss += static_cast<double>(mask[i]) * c * c;
  }
  const double var = ss / (count - 1.0);  // Bessel's correction: the mean was estimated from the same values
  const double rstd = 1.0 / std::sqrt(var + 1e-8);  // 1e-8 as trl: a constant row does not divide by 0
  for (long i = 0; i < n; i++) {
    const double w = (static_cast<double>(x[i]) - mean) * rstd + (shift_mean ? 0.0 : mean);
    out[i] = mask[i] == real(0) ? real(0) : static_cast<real>(w);
  }
}

template void compute_gae<float>(float*, float*, const float*, const float*, const float*, int, int, double,
                                 double);
template void compute_gae<double>(double*, double*, const double*, const double*, const double*, int, int, double,
                                  double);
template void masked_whiten<float>(float*, const float*, const float*, long, bool);
template void masked_whiten<double>(double*, const double*, const double*, long, bool);

}  // namespace tinyds
