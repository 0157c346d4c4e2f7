// kernels/rmsnorm.cuh — host launchers of the RMSNorm kernels (kernels/rmsnorm.cu), on device pointers.
// Mirrors tinyds/ops/rmsnorm.h. Shapes: N rows, C width. dinp WRITTEN (=), dweight ACCUMULATED (+=).
#pragma once

namespace tinyds::cuda {

// out (N, C) = inp * rstd[n] * weight;  rstd (N) = 1 / sqrt(mean_c inp[n,c]^2 + eps)  (saved for backward)
// version 1: thread per row, 2: block per row (shared-memory tree), 3: warp per row (shuffles); 0 = 3.
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps,
                     int version = 0);
// dinp (N, C) written; dweight (C) accumulated.
// version 1: thread per row + thread per column, 2: block per row + atomicAdd, 3: warp per row + thread per column;
// 0 = 3.
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C, int version = 0);

}  // namespace tinyds::cuda
