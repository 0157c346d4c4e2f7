// kernels/adamw.cuh — host launchers of the AdamW and gradient-clipping kernels (kernels/adamw.cu); device
// pointers. Mirrors tinyds/ops/adamw.h. Shapes: n parameters.
#pragma once
#include <cstddef>

namespace tinyds::cuda {

// One AdamW step on params (n), grads (n), m (n), v (n); step t >= 1.
void adamw_update(float* params, const float* grads, float* m, float* v, std::size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int t, int version = 0);

// norm (1, device) = sqrt(sum g^2), accumulated in double.   g (n)
// The CPU returns the norm; here it stays on the device so that clip_grad_norm can read it without a round trip.
// version 1: many blocks, each adds its partial into *norm2 with atomicAdd (order varies run to run), then a
//            one-thread kernel takes the sqrt. version 2: one block, a fixed tree order (same bits every run).
// version 0 = 2.
void global_norm(float* norm, const float* g, std::size_t n, int version = 0);

// If *norm > max_norm (> 0): g *= max_norm / *norm. scale (1, device, may be nullptr) receives the scale applied
// (1 when not clipped), the CPU's return value.   g (n), norm (1, device) from global_norm
void clip_grad_norm(float* g, std::size_t n, const float* norm, float max_norm, float* scale = nullptr,
                    int version = 0);

}  // namespace tinyds::cuda
