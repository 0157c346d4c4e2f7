// kernels/swiglu.cuh — host launchers of the SwiGLU kernels (kernels/swiglu.cu); device pointers.
// Mirrors tinyds/ops/swiglu.h. Shapes: n elements.
#pragma once

namespace tinyds::cuda {

// out (n) = silu(a) * b,  a (n), b (n)
void swiglu_forward(float* out, const float* a, const float* b, long n, int version = 0);

// da (n), db (n) written.   dout (n), a (n), b (n)
void swiglu_backward(float* da, float* db, const float* dout, const float* a, const float* b, long n,
                     int version = 0);

}  // namespace tinyds::cuda
