// kernels/swiglu.cu — the SwiGLU gate (Shazeer 2020) on the GPU: out = silu(a) * b, silu(a) = a sigmoid(a).
// CPU reference: tinyds/ops/swiglu.h (same names, same argument order, device pointers).
//
// Shapes: n elements.   a, b, out, dout, da, db (n).   Gradients: da, db WRITTEN (=).
// Version 1 (the only one): one thread per element, a grid-stride loop so any n fits a bounded grid. An
// elementwise op is limited by memory traffic (3 floats moved per forward element, 5 per backward), not by the exp.
#include "kernels/common.cuh"
#include "kernels/swiglu.cuh"
#include "tinyds/core/error.h"

namespace tinyds::cuda {

constexpr int kSwigluBlock = 256;
constexpr unsigned kSwigluMaxBlocks = 4096;  // enough blocks to fill any current GPU; the loop covers the rest

__global__ void swiglu_forward_kernel1(float* out, const float* a, const float* b, long n) {
  for (long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long>(gridDim.x) * blockDim.x) {
    // sigmoid(a) = 1 / (1 + e^-a): for a very negative, e^-a = +inf and sigmoid is exactly 0, never NaN.
    const float s = 1.0f / (1.0f + expf(-a[i]));
    out[i] = a[i] * s * b[i];
  }
}

// forward was: out = a * sigmoid(a) * b
//   d out / d b = a sigmoid(a);   d out / d a = b sigmoid(a) (1 + a (1 - sigmoid(a)))   (sigmoid' = s (1 - s))
__global__ void swiglu_backward_kernel1(float* da, float* db, const float* dout, const float* a, const float* b,
                                        long n) {
  for (long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long>(gridDim.x) * blockDim.x) {
    const float s = 1.0f / (1.0f + expf(-a[i]));
    const float g = dout[i];
    da[i] = g * b[i] * s * (1.0f + a[i] * (1.0f - s));
    db[i] = g * a[i] * s;
  }
}

static dim3 swiglu_grid(long n) {
  const unsigned blocks = ceil_div(n, kSwigluBlock);
  return dim3(blocks < kSwigluMaxBlocks ? blocks : kSwigluMaxBlocks);
}

void swiglu_forward(float* out, const float* a, const float* b, long n, int version) {
  if (version != 0 && version != 1) throw_error("swiglu_forward: no kernel version ", version);
  if (n <= 0) return;
  launch(swiglu_forward_kernel1, swiglu_grid(n), dim3(kSwigluBlock), 0, out, a, b, n);
}

void swiglu_backward(float* da, float* db, const float* dout, const float* a, const float* b, long n, int version) {
  if (version != 0 && version != 1) throw_error("swiglu_backward: no kernel version ", version);
  if (n <= 0) return;
  launch(swiglu_backward_kernel1, swiglu_grid(n), dim3(kSwigluBlock), 0, da, db, dout, a, b, n);
}

}  // namespace tinyds::cuda
