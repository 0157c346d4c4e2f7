// kernels/gae.cuh — host launchers of the GAE and masked-whitening kernels (kernels/gae.cu); device pointers.
// Mirrors tinyds/posttrain/losses/gae.h. Shapes: B sequences, T positions, n = B*T.
#pragma once

namespace tinyds::cuda {

// advantages (B, T), returns (B, T) written.   rewards, values, mask (B, T); gamma, lam in [0, 1]
void compute_gae(float* advantages, float* returns, const float* rewards, const float* values, const float* mask,
                 int B, int T, double gamma, double lam, int version = 0);

// out (n) = (x - mean) / sqrt(var + 1e-8) over mask-1 positions (unbiased var), 0 elsewhere; out may alias x.
// Needs >= 2 unmasked positions (the CPU throws; here the variance would be NaN: validate on the host).
void masked_whiten(float* out, const float* x, const float* mask, long n, bool shift_mean = true, int version = 0);

}  // namespace tinyds::cuda
