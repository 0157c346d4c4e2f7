// kernels/cross_entropy.cu — fused softmax + cross-entropy with a loss mask on the GPU, forward and backward.
// CPU reference: tinyds/ops/cross_entropy.h (same names, same argument order, device pointers).
//
// Shapes: N rows (B*T), V vocab.   logits (N, V), targets (N), losses (N), lse (N), dlosses (N), dlogits (N, V).
//   lse[n] = log sum_v exp(logits[n, v]);   losses[n] = lse[n] - logits[n, targets[n]];   target < 0: masked.
// Gradients: dlogits WRITTEN (=). As on the CPU, no probability buffer is ever written: forward saves lse (N),
// backward recomputes softmax = exp(logits - lse) on the fly.
//
// Version 1 (the only one), both directions: one block per row. The block's threads stride over the vocab
// (thread j reads v = j, j + blockDim, ...: consecutive threads read consecutive floats, so loads coalesce),
// then two block reductions give the row max and the row sum of exps. The row is read twice in forward (max,
// then sum) and once in backward; one pass with an online max (see attention.cu's flash kernel) would save a
// read in forward.
#include "kernels/common.cuh"
#include "kernels/cross_entropy.cuh"
#include "kernels/reductions.cuh"
#include "tinyds/core/error.h"

namespace tinyds::cuda {

constexpr int kCrossEntropyBlock = 256;

__global__ void cross_entropy_forward_kernel1(float* losses,        // (N)
                                              float* lse,           // (N)
                                              const float* logits,  // (N, V)
                                              const int* targets,   // (N)
                                              int N, int V) {
  STATIC_SHARED(float, scratch, [32]);
  const int n = blockIdx.x;
  const float* x = logits + static_cast<long>(n) * V;
  // Max subtraction: every exponent x - m <= 0, so exp never overflows, and the max term is exactly 1, so the sum
  // is >= 1 and its log is finite.
  float m = -INFINITY;
  for (int v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, x[v]);
  m = block_max(m, scratch);
  float s = 0.0f;
  for (int v = threadIdx.x; v < V; v += blockDim.x) s += expf(x[v] - m);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) {
    const float l = m + logf(s);
    lse[n] = l;
    const int t = targets[n];
    losses[n] = t < 0 ? 0.0f : l - x[t];
  }
}

// forward was: losses[n] = lse[n] - logits[n, t]
//   d lse / d logits[n, v] = softmax_v = exp(logits[n, v] - lse[n]),  so dlogits = dlosses[n] (softmax - onehot(t))
__global__ void cross_entropy_backward_kernel1(float* dlogits,        // (N, V)
                                               const float* dlosses,  // (N)
                                               const float* logits,   // (N, V)
                                               const float* lse,      // (N)
                                               const int* targets,    // (N)
                                               int N, int V) {
  const int n = blockIdx.x;
  const float* x = logits + static_cast<long>(n) * V;
  float* dx = dlogits + static_cast<long>(n) * V;
  const int t = targets[n];
  const float g = dlosses[n], l = lse[n];
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    // A masked row had loss 0: zero gradient (written, not skipped: dlogits is an output).
    dx[v] = t < 0 ? 0.0f : g * expf(x[v] - l) - (v == t ? g : 0.0f);
  }
}

void cross_entropy_forward(float* losses, float* lse, const float* logits, const int* targets, int N, int V,
                           int version) {
  if (version != 0 && version != 1) throw_error("cross_entropy_forward: no kernel version ", version);
  if (V < 1) throw_error("cross_entropy_forward: V = ", V, " must be >= 1");
  if (N <= 0) return;  // an empty batch launches nothing
  launch(cross_entropy_forward_kernel1, dim3(N), dim3(kCrossEntropyBlock), 0, losses, lse, logits, targets, N, V);
}

void cross_entropy_backward(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                            const int* targets, int N, int V, int version) {
  if (version != 0 && version != 1) throw_error("cross_entropy_backward: no kernel version ", version);
  if (V < 1) throw_error("cross_entropy_backward: V = ", V, " must be >= 1");
  if (N <= 0) return;
  launch(cross_entropy_backward_kernel1, dim3(N), dim3(kCrossEntropyBlock), 0, dlogits, dlosses, logits, lse,
         targets, N, V);
}

}  // namespace tinyds::cuda
