// kernels/residual.cuh — host launchers of the residual kernels (kernels/residual.cu), on device pointers.
// Mirrors tinyds/ops/residual.h. Shapes: n elements. Gradients da, db WRITTEN (=).
#pragma once

namespace tinyds::cuda {

// out (n) = a + b
void residual_forward(float* out, const float* a, const float* b, long n, int version = 0);
// da = dout, db = dout (both written; either may be nullptr)
void residual_backward(float* da, float* db, const float* dout, long n, int version = 0);
// acc (n) += x (n)
void add_inplace(float* acc, const float* x, long n, int version = 0);
// x (n) *= s
void scale_inplace(float* x, float s, long n, int version = 0);

}  // namespace tinyds::cuda
