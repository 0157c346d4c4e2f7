// kernels/adamw.cu — AdamW (Loshchilov & Hutter 2019, Algorithm 2) and global gradient-norm clipping on the GPU.
// CPU reference: tinyds/ops/adamw.h (same names and argument order; device pointers; the norm stays on the device).
//
// Shapes: n parameters; params, grads, m, v (n); norm, scale (1).
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr * ( m / (1 - beta1^t) / (sqrt(v / (1 - beta2^t)) + eps) + weight_decay * p )
//
// Versions:
//   adamw_update 1: one thread per parameter, grid-stride loop (elementwise: 4 reads and 3 writes per parameter).
//   global_norm  1: a grid of blocks; each block reduces its slice (in double) and atomicAdds the partial into a
//                   device accumulator; a second one-thread kernel takes the sqrt. Fast (every SM reads), but the
//                   order in which the partials arrive varies, so the last bits of the norm vary run to run.
//                   (Double atomicAdd exists on sm_60+; the emulation has float atomics only, so the partials are
//                   rounded to float before the atomic: see the comment there.)
//   global_norm  2: one block of 1024 threads; each thread sums a strided slice in double, then a shared-memory tree
//                   halves the 1024 partials ten times. The order is fixed: the same bits on every run. One SM reads
//                   all n floats, which costs ~a millisecond per 100M parameters: nothing next to a training step.
//   clip_grad_norm 1: every thread reads the device scalar *norm and scales its elements, so the clip decision
//                   needs no copy to the host (which would stall the GPU queue every step).
//   Version 0: adamw 1, global_norm 2 (reproducible, like the CPU, which fixes its chunk order for the same reason),
//   clip 1.
#include <cmath>

#include "kernels/adamw.cuh"
#include "kernels/common.cuh"
#include "tinyds/core/error.h"

namespace tinyds::cuda {

constexpr int kAdamBlock = 256;
constexpr unsigned kAdamMaxBlocks = 4096;
constexpr int kNormBlock = 1024;  // global_norm version 2: one block, a power of two for the tree

static dim3 elementwise_grid(std::size_t n) {
  const unsigned blocks = ceil_div(static_cast<long long>(n), kAdamBlock);
  return dim3(blocks < kAdamMaxBlocks ? blocks : kAdamMaxBlocks);
}

__global__ void adamw_update_kernel1(float* params, const float* grads, float* m, float* v, long long n, float lr,
                                     float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float g = grads[i];
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float mhat = mi / bc1;
    const float vhat = vi / bc2;
    // Decoupled weight decay: wd * p is added to the step, not to g, so it is not rescaled by 1/sqrt(vhat).
    params[i] -= lr * (mhat / (sqrtf(vhat) + eps) + weight_decay * params[i]);
  }
}

void adamw_update(float* params, const float* grads, float* m, float* v, std::size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int t, int version) {
  if (t < 1) throw_error("adamw_update: step t = ", t, " must be >= 1 (bias correction divides by 1 - beta^t)");
  if (version != 0 && version != 1) throw_error("adamw_update: no kernel version ", version);
  if (n == 0) return;
  // Bias corrections on the host, in double, as the CPU computes them: one number per step, not per parameter.
  const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta1), t));
  const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta2), t));
  launch(adamw_update_kernel1, elementwise_grid(n), dim3(kAdamBlock), 0, params, grads, m, v,
         static_cast<long long>(n), lr, beta1, beta2, eps, weight_decay, bc1, bc2);
}

// ---- global norm, version 1: block partials + atomicAdd ----------------------------------------------------------

__global__ void global_norm_partial_kernel1(float* norm2,  // (1) accumulator, zeroed before the launch
                                            const float* g, long long n) {
  STATIC_SHARED(double, partial, [kAdamBlock]);
  double s = 0.0;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    s += static_cast<double>(g[i]) * g[i];
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {  // tree: blockDim.x is a power of two
    if (static_cast<int>(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();  // every pair of this level is added before the next level reads it
  }
  // Blocks finish in any order: the atomic makes each add indivisible but does not fix the order. The partial is
  // rounded to float first (float atomicAdd is what every GPU and the emulation have).
  if (threadIdx.x == 0) atomicAdd(norm2, static_cast<float>(partial[0]));
}

__global__ void global_norm_sqrt_kernel1(float* norm) { *norm = sqrtf(*norm); }

// ---- global norm, version 2: one block, fixed order ---------------------------------------------------------------

__global__ void global_norm_kernel2(float* norm, const float* g, long long n) {
  STATIC_SHARED(double, partial, [kNormBlock]);
  double s = 0.0;
  for (long long i = threadIdx.x; i < n; i += blockDim.x) s += static_cast<double>(g[i]) * g[i];
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) *norm = static_cast<float>(sqrt(partial[0]));
}

void global_norm(float* norm, const float* g, std::size_t n, int version) {
  switch (version) {
    case 1:
      CUDA_CHECK(cudaMemset(norm, 0, sizeof(float)));  // the atomics add into it
      if (n > 0)
        launch(global_norm_partial_kernel1, elementwise_grid(n), dim3(kAdamBlock), 0, norm, g,
               static_cast<long long>(n));
      launch(global_norm_sqrt_kernel1, dim3(1), dim3(1), 0, norm);
      break;
    case 0:
    case 2:
      launch(global_norm_kernel2, dim3(1), dim3(kNormBlock), 0, norm, g, static_cast<long long>(n));
      break;
    default: throw_error("global_norm: no kernel version ", version);
  }
}

// ---- clipping -----------------------------------------------------------------------------------------------------

__global__ void clip_grad_norm_kernel1(float* g, long long n, const float* norm, float max_norm, float* scale) {
  const float nrm = *norm;
  // Written so that a NaN norm compares false and leaves g alone, as on the CPU.
  const bool clip = max_norm > 0.0f && nrm > max_norm;
  const float s = clip ? static_cast<float>(static_cast<double>(max_norm) / nrm) : 1.0f;
  if (scale != nullptr && blockIdx.x == 0 && threadIdx.x == 0) *scale = s;
  if (!clip) return;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    g[i] *= s;
}

void clip_grad_norm(float* g, std::size_t n, const float* norm, float max_norm, float* scale, int version) {
  if (version != 0 && version != 1) throw_error("clip_grad_norm: no kernel version ", version);
  // Launched even for n == 0 so that *scale is written.
  launch(clip_grad_norm_kernel1, n == 0 ? dim3(1) : elementwise_grid(n), dim3(kAdamBlock), 0, g,
         static_cast<long long>(n), norm, max_norm, scale);
}

}  // namespace tinyds::cuda
