// kernels/logprobs.cuh — host launchers of the log-prob and entropy kernels (kernels/logprobs.cu); device pointers.
// Mirrors tinyds/posttrain/losses/logprobs.h. Shapes: N rows, V vocab; a target < 0 is masked.
#pragma once

namespace tinyds::cuda {

// lp (N) = log softmax(logits[n] / temperature)[targets[n]] (0 where masked).   logits (N, V), targets (N) < V
void logprobs_forward(float* lp, const float* logits, const int* targets, int N, int V, double temperature = 1.0,
                      int version = 0);

// dlogits (N, V) written: dlp[n] * (onehot(targets[n]) - p[n]) / temperature; 0 rows where masked.   dlp (N)
void logprobs_backward(float* dlogits, const float* dlp, const float* logits, const int* targets, int N, int V,
                       double temperature = 1.0, int version = 0);

// entropy (N) = -sum_v p[v] log p[v], p = softmax(logits[n] / temperature) (0 where masked).
void entropy_forward(float* entropy, const float* logits, const int* targets, int N, int V,
                     double temperature = 1.0, int version = 0);

// dlogits (N, V) written: -dentropy[n] * p[v] (log p[v] + H[n]) / temperature; 0 rows where masked.
void entropy_backward(float* dlogits, const float* dentropy, const float* logits, const int* targets, int N, int V,
                      double temperature = 1.0, int version = 0);

}  // namespace tinyds::cuda
