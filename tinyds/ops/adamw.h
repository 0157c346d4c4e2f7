// tinyds/ops/adamw.h — AdamW (Loshchilov & Hutter 2019, Algorithm 2) and global grad-norm clipping.
// Shapes: n parameters. Conventions: see embedding.h.
#pragma once
#include <cstddef>

namespace tinyds {

// One AdamW step on n parameters, step t >= 1 (bias correction uses t):
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   mhat = m / (1 - beta1^t);     vhat = v / (1 - beta2^t)
//   p -= lr * ( mhat / (sqrt(vhat) + eps) + weight_decay * p )        (decay decoupled from the gradient)
template <typename real>
void adamw_update(real* params, const real* grads, real* m, real* v, std::size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int t);

// L2 norm of g (n), accumulated in double.
template <typename real>
double global_norm(const real* g, std::size_t n);

// If norm > max_norm (> 0): g *= max_norm / norm. Returns the scale applied (1 when not clipped).
template <typename real>
double clip_grad_norm(real* g, std::size_t n, double norm, double max_norm);

}  // namespace tinyds
