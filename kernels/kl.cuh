// kernels/kl.cuh — host launchers of the k1/k2/k3 KL estimator kernels (kernels/kl.cu); device pointers.
// Mirrors tinyds/posttrain/losses/kl.h. Shapes: n token positions.
#pragma once
#include "tinyds/posttrain/losses/kl.h"

namespace tinyds::cuda {

// kl (n) = k(lp_ref - lp) per token.   lp (n), lp_ref (n)
void kl_forward(float* kl, const float* lp, const float* lp_ref, long n, KLEstimator estimator, int version = 0);

// dlp (n) written: dkl * dk/dlp  (k1: 1, k2: lp - lp_ref, k3: 1 - exp(lp_ref - lp)).   dkl (n)
void kl_backward(float* dlp, const float* dkl, const float* lp, const float* lp_ref, long n, KLEstimator estimator,
                 int version = 0);

}  // namespace tinyds::cuda
