// kernels/cross_entropy.cuh — host launchers of the fused softmax cross-entropy kernels (kernels/cross_entropy.cu);
// device pointers. Mirrors tinyds/ops/cross_entropy.h. Shapes: N rows, V vocab; a target < 0 is masked.
#pragma once

namespace tinyds::cuda {

// losses (N) = lse[n] - logits[n, targets[n]] (0 where targets[n] < 0);  lse (N).   logits (N, V), targets (N)
// Targets must be < V (the caller validated them on the host).
void cross_entropy_forward(float* losses, float* lse, const float* logits, const int* targets, int N, int V,
                           int version = 0);

// dlogits (N, V) written: dlosses[n] * (softmax(logits[n]) - onehot(targets[n])); 0 rows where targets[n] < 0.
void cross_entropy_backward(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                            const int* targets, int N, int V, int version = 0);

}  // namespace tinyds::cuda
