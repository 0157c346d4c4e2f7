// kernels/kl.cu — per-token estimators of KL(pi || ref) (Schulman 2020) on the GPU, and their gradients.
// CPU reference: tinyds/posttrain/losses/kl.h (same names, same argument order, device pointers).
//
// Shapes: n token positions; lp, lp_ref, kl, dkl, dlp (n).   x = lp_ref - lp = log(ref / pi):
//   k1 = -x;   k2 = x^2 / 2;   k3 = exp(x) - x - 1         (GRPO's, DeepSeekMath Eq. 4)
//   dk1/dlp = 1;   dk2/dlp = -x;   dk3/dlp = 1 - exp(x)
// Gradients: dlp WRITTEN (=).
// Version 1 (the only one): one thread per token, grid-stride. k3 is computed as expm1f(x) - x, as the CPU does in
// double: when pi is close to ref, exp(x) - 1 would cancel to rounding noise (x = 1e-4 leaves ~3 correct digits in
// float), while expm1 keeps the relative accuracy.
#include "kernels/common.cuh"
#include "kernels/kl.cuh"
#include "tinyds/core/error.h"

namespace tinyds::cuda {

constexpr int kKlBlock = 256;
constexpr unsigned kKlMaxBlocks = 4096;

// The estimator and its derivative for one token (the device twins of kl_estimate / kl_estimate_dlp in kl.h).
__device__ __forceinline__ float kl_value(float lp, float lp_ref, int estimator) {
  const float x = lp_ref - lp;
  if (estimator == static_cast<int>(KLEstimator::k1)) return -x;
  if (estimator == static_cast<int>(KLEstimator::k2)) return 0.5f * x * x;
  return expm1f(x) - x;  // k3
}
__device__ __forceinline__ float kl_dlp(float lp, float lp_ref, int estimator) {
  const float x = lp_ref - lp;
  if (estimator == static_cast<int>(KLEstimator::k1)) return 1.0f;
  if (estimator == static_cast<int>(KLEstimator::k2)) return -x;
  return -expm1f(x);  // k3
}

__global__ void kl_forward_kernel1(float* kl, const float* lp, const float* lp_ref, long n, int estimator) {
  for (long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long>(gridDim.x) * blockDim.x)
    kl[i] = kl_value(lp[i], lp_ref[i], estimator);
}

// forward was: kl[i] = k(lp_ref[i] - lp[i])
__global__ void kl_backward_kernel1(float* dlp, const float* dkl, const float* lp, const float* lp_ref, long n,
                                    int estimator) {
  for (long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long>(gridDim.x) * blockDim.x)
    dlp[i] = dkl[i] * kl_dlp(lp[i], lp_ref[i], estimator);
}

static void check_kl(long n, KLEstimator k, int version, const char* where) {
  if (n < 0) throw_error(where, ": n = ", n, " must be >= 0");
  if (k != KLEstimator::k1 && k != KLEstimator::k2 && k != KLEstimator::k3)
    throw_error(where, ": estimator = ", static_cast<int>(k), " is not one of k1, k2, k3");
  if (version != 0 && version != 1) throw_error(where, ": no kernel version ", version);
}

static dim3 kl_grid(long n) {
  const unsigned blocks = ceil_div(n, kKlBlock);
  return dim3(blocks < kKlMaxBlocks ? blocks : kKlMaxBlocks);
}

void kl_forward(float* kl, const float* lp, const float* lp_ref, long n, KLEstimator estimator, int version) {
  check_kl(n, estimator, version, "kl_forward");
  if (n == 0) return;
  launch(kl_forward_kernel1, kl_grid(n), dim3(kKlBlock), 0, kl, lp, lp_ref, n, static_cast<int>(estimator));
}

void kl_backward(float* dlp, const float* dkl, const float* lp, const float* lp_ref, long n, KLEstimator estimator,
                 int version) {
  check_kl(n, estimator, version, "kl_backward");
  if (n == 0) return;
  launch(kl_backward_kernel1, kl_grid(n), dim3(kKlBlock), 0, dlp, dkl, lp, lp_ref, n, static_cast<int>(estimator));
}

}  // namespace tinyds::cuda
