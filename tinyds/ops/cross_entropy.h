// tinyds/ops/cross_entropy.h — fused softmax + cross-entropy with a loss mask.
//
// Shapes: N rows (B*T), V vocab. A target < 0 is masked out (like PyTorch's ignore_index): its loss is 0 and
// its dlogits row is 0. The logits are never turned into a separate probability buffer: forward saves the
// log-sum-exp per row, backward recomputes softmax from logits and lse (saves N*V floats of memory).
// Conventions: see embedding.h.
#pragma once

namespace tinyds {

// losses (N) = lse[n] - logits[n, targets[n]] (0 where targets[n] < 0);  lse (N) = log sum_v exp(logits[n, v])
// (computed with max subtraction so that exp never overflows).   logits (N, V), targets (N)
template <typename real>
void cross_entropy_forward(real* losses, real* lse, const real* logits, const int* targets, int N, int V);

// dlogits (N, V) written: dlosses[n] * (softmax(logits[n]) - onehot(targets[n])), 0 rows where targets[n] < 0.
// dlosses (N) is d(total loss)/d(losses[n]): e.g. 1/num_unmasked for a masked mean.
template <typename real>
void cross_entropy_backward(real* dlogits, const real* dlosses, const real* logits, const real* lse,
                            const int* targets, int N, int V);

}  // namespace tinyds
