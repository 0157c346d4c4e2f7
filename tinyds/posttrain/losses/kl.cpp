// tinyds/posttrain/losses/kl.cpp — k1 / k2 / k3 KL estimators (see kl.h).
//
// Shapes: n token positions.  x = lp_ref - lp.  Gradients: dlp WRITTEN (=).
#include "tinyds/posttrain/losses/kl.h"

#include "tinyds/core/error.h"

namespace tinyds {

const char* kl_estimator_name(KLEstimator k) {
  switch (k) {
    case KLEstimator::k1: return "k1";
    case KLEstimator::k2: return "k2";
    case KLEstimator::k3: return "k3";
  }
  return "?";
}

static void check_kl_args(long n, KLEstimator k, const char* where) {
  if (n < 0) throw_error(where, ": n = ", n, " must be >= 0");
  if (k != KLEstimator::k1 && k != KLEstimator::k2 && k != KLEstimator::k3)
    throw_error(where, ": estimator = ", static_cast<int>(k), " is not one of k1, k2, k3");
}

template <typename real>
void kl_forward(real* kl,            // (n)
                const real* lp,      // (n) log pi of the sampled tokens
                const real* lp_ref,  // (n) log ref of the same tokens
                long n, KLEstimator estimator) {
  check_kl_args(n, estimator, "kl_forward");
  for (long i = 0; i < n; i++) kl[i] = static_cast<real>(kl_estimate(lp[i], lp_ref[i], estimator));
}

// forward was: kl[i] = k(lp_ref[i] - lp[i]); the per-estimator derivative is kl_estimate_dlp (kl.h).
template <typename real>
void kl_backward(real* dlp,           // (n) written
                 const real* dkl,     // (n)
                 const real* lp,      // (n)
                 const real* lp_ref,  // (n)
                 long n, KLEstimator estimator) {
  check_kl_args(n, estimator, "kl_backward");
  for (long i = 0; i < n; i++)
    dlp[i] = static_cast<real>(static_cast<double>(dkl[i]) * kl_estimate_dlp(lp[i], lp_ref[i], estimator));
}

template void kl_forward<float>(float*, const float*, const float*, long, KLEstimator);
template void kl_forward<double>(double*, const double*, const double*, long, KLEstimator);
template void kl_backward<float>(float*, const float*, const float*, const float*, long, KLEstimator);
template void kl_backward<double>(double*, const double*, const double*, const double*, long, KLEstimator);

}  // namespace tinyds
