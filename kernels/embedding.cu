// kernels/embedding.cu — token embedding lookup on the GPU, forward and backward.
// CPU reference: tinyds/ops/embedding.h (same names, same argument order, device pointers).
//
// Shapes: N = B*T rows, C width, V vocab.   out (N, C), tokens (N), wte (V, C), dout (N, C), dwte (V, C).
// Gradients: dwte ACCUMULATES (+=), as every parameter gradient does.
//
// Versions:
//   forward  1: one thread per output element; consecutive threads read consecutive columns of one wte row, so
//               a warp's loads coalesce into a few 128-byte transactions.
//   backward 1: one thread per dout element, atomicAdd into dwte[tokens[n], c]. Two rows with the same token
//               write the same address; the atomic makes the read-add-write indivisible, but the ORDER of the adds
//               depends on scheduling, so the float sum can differ in the last bits from run to run.
//   backward 2: one thread per column c, walking the rows n = 0..N-1 in order. Each dwte element then has exactly
//               one writer (the thread of its column), so no atomics, and the adds happen in the CPU's order:
//               the same bits as the CPU. Parallelism is only C threads, which is enough here: the backward is N*C
//               adds, negligible next to any matmul.
//   Version 0 = backward 2: reproducible bits are worth more than the speed of an op this small.
#include "kernels/common.cuh"
#include "kernels/embedding.cuh"
#include "tinyds/core/error.h"

namespace tinyds::cuda {

constexpr int kEmbeddingBlock = 256;

__global__ void embedding_forward_kernel1(float* out,          // (N, C)
                                          const int* tokens,   // (N)
                                          const float* wte,    // (V, C)
                                          int N, int C) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<long>(N) * C) return;
  const long n = i / C, c = i % C;
  out[i] = wte[static_cast<long>(tokens[n]) * C + c];
}

// forward was: out[n, :] = wte[tokens[n], :]   so   dwte[tokens[n], :] += dout[n, :]
__global__ void embedding_backward_kernel1(float* dwte,         // (V, C) accumulated
                                           const float* dout,   // (N, C)
                                           const int* tokens,   // (N)
                                           int N, int C) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<long>(N) * C) return;
  const long n = i / C, c = i % C;
  // Rows n and n' with tokens[n] == tokens[n'] race on this address: a plain += would lose one of the adds.
  atomicAdd(&dwte[static_cast<long>(tokens[n]) * C + c], dout[i]);
}

__global__ void embedding_backward_kernel2(float* dwte,         // (V, C) accumulated
                                           const float* dout,   // (N, C)
                                           const int* tokens,   // (N)
                                           int N, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  // This thread is the only writer of column c of dwte: no race, and the adds run in row order like the CPU's.
  // Neighbouring threads touch neighbouring columns of the same rows, so loads and stores still coalesce.
  for (int n = 0; n < N; n++) dwte[static_cast<long>(tokens[n]) * C + c] += dout[static_cast<long>(n) * C + c];
}

void embedding_forward(float* out, const int* tokens, const float* wte, int N, int C, int version) {
  const long total = static_cast<long>(N) * C;
  if (total == 0) return;  // an empty batch launches nothing (a grid of 0 blocks is a launch error)
  switch (version) {
    case 0:
    case 1:
      launch(embedding_forward_kernel1, dim3(ceil_div(total, kEmbeddingBlock)), dim3(kEmbeddingBlock), 0, out,
             tokens, wte, N, C);
      break;
    default: throw_error("embedding_forward: no kernel version ", version);
  }
}

void embedding_backward(float* dwte, const float* dout, const int* tokens, int N, int C, int version) {
  const long total = static_cast<long>(N) * C;
  if (total == 0) return;
  switch (version) {
    case 1:
      launch(embedding_backward_kernel1, dim3(ceil_div(total, kEmbeddingBlock)), dim3(kEmbeddingBlock), 0, dwte,
             dout, tokens, N, C);
      break;
    case 0:
    case 2:
      launch(embedding_backward_kernel2, dim3(ceil_div(C, kEmbeddingBlock)), dim3(kEmbeddingBlock), 0, dwte, dout,
             tokens, N, C);
      break;
    default: throw_error("embedding_backward: no kernel version ", version);
  }
}

}  // namespace tinyds::cuda
