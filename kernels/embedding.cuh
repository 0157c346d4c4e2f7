// kernels/embedding.cuh — host launchers of the embedding kernels (kernels/embedding.cu); device pointers.
// Mirrors tinyds/ops/embedding.h. Shapes: N = B*T rows, C width, V vocab.
#pragma once

namespace tinyds::cuda {

// out (N, C) = wte[tokens[n], :].  tokens (N) in [0, V) (not checked here: the caller validated them on the host),
// wte (V, C).  version 0 = 1 (the only one).
void embedding_forward(float* out, const int* tokens, const float* wte, int N, int C, int version = 0);

// dwte (V, C) += dout (N, C) scattered by tokens (N).
// version 1: one thread per element, atomicAdd (order of repeated tokens' adds varies run to run).
// version 2: one thread per column c walking n in order (no atomics, the CPU's bits). version 0 = 2.
void embedding_backward(float* dwte, const float* dout, const int* tokens, int N, int C, int version = 0);

}  // namespace tinyds::cuda
