// tinyds/posttrain/losses/kl.h — per-token estimators of KL(pi || ref) from the sampled tokens' log-probs.
//
// Shapes: n token positions (B*T, flattened). lp (n) = log pi(y_t), lp_ref (n) = log ref(y_t), y_t ~ pi.
// With x = lp_ref - lp = log(ref / pi) (Schulman, "Approximating KL divergence", 2020):
//   k1 = -x                 unbiased, high variance, can be negative
//   k2 = x^2 / 2            biased, low variance, >= 0
//   k3 = exp(x) - x - 1     unbiased, low variance, >= 0   (GRPO's estimator, DeepSeekMath Eq. 4)
// These are elementwise: masking and averaging are the caller's (ppo, grpo).
//
// Gradients as a loss term (verl core_algos.py notes this): differentiating the estimator through lp with the
// samples held fixed, E_pi[grad k1] = E_pi[grad log pi] = 0, E_pi[grad k2] = E_pi[(log pi - log ref) grad log pi]
// = grad KL(pi || ref), and E_pi[grad k3] = E_pi[(1 - ref/pi) grad log pi] = -sum_y ref grad log pi
// = grad KL(ref || pi). So k3, although an unbiased estimate of the VALUE of KL(pi || ref), has the expected
// gradient of the reverse KL, not of KL(pi || ref); k2's expected gradient is KL's. (GRPO uses k3 anyway.)
// Conventions: gradients w.r.t. lp are WRITTEN (=); the reference is frozen, so there is no dlp_ref.
#pragma once
#include <cmath>

namespace tinyds {

enum class KLEstimator { k1, k2, k3 };
const char* kl_estimator_name(KLEstimator k);  // "k1", "k2", "k3"

// One token's estimate, x = lp_ref - lp = log(ref / pi). k3 as expm1(x) - x rather than exp(x) - 1 - x: when pi is
// close to ref (|x| ~ 1e-8) the latter cancels to rounding noise.
inline double kl_estimate(double lp, double lp_ref, KLEstimator estimator) {
  const double x = lp_ref - lp;
  switch (estimator) {
    case KLEstimator::k1: return -x;
    case KLEstimator::k2: return 0.5 * x * x;
    case KLEstimator::k3: return std::expm1(x) - x;
  }
  return 0.0;
}
// d(estimate)/d lp; forward was k1 = -x, k2 = x^2 / 2, k3 = exp(x) - x - 1, and dx/dlp = -1, so
//   dk1/dlp = 1,  dk2/dlp = -x = lp - lp_ref,  dk3/dlp = -(exp(x) - 1) = 1 - exp(lp_ref - lp)
inline double kl_estimate_dlp(double lp, double lp_ref, KLEstimator estimator) {
  const double x = lp_ref - lp;
  switch (estimator) {
    case KLEstimator::k1: return 1.0;
    case KLEstimator::k2: return -x;
    case KLEstimator::k3: return -std::expm1(x);
  }
  return 0.0;
}

// kl (n) = k(lp_ref - lp) per token.   lp (n), lp_ref (n)
template <typename real>
void kl_forward(real* kl, const real* lp, const real* lp_ref, long n, KLEstimator estimator);

// dlp (n) written: dkl * dk/dlp, where   k1: 1,   k2: lp - lp_ref,   k3: 1 - exp(lp_ref - lp).   dkl (n)
template <typename real>
void kl_backward(real* dlp, const real* dkl, const real* lp, const real* lp_ref, long n, KLEstimator estimator);

}  // namespace tinyds
