// tinyds/ops/rmsnorm.h — RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * w.
// Shapes: N rows, C width. Conventions: see embedding.h (param grads +=, activation grads =).
#pragma once

namespace tinyds {

// out (N, C) = inp * rstd[n] * weight;   rstd (N) = 1 / sqrt(mean_c inp[n,c]^2 + eps)  (saved for backward)
template <typename real>
void rmsnorm_forward(real* out, real* rstd, const real* inp, const real* weight, int N, int C, real eps);

// dinp (N, C) written; dweight (C) accumulated.
template <typename real>
void rmsnorm_backward(real* dinp, real* dweight, const real* dout, const real* inp, const real* weight,
                      const real* rstd, int N, int C);

}  // namespace tinyds
