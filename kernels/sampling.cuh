// kernels/sampling.cuh — host launcher of the next-token sampling kernel (kernels/sampling.cu); device pointers.
// Mirrors sample_token in tinyds/model/sampling.h, one row per block. Shapes: N rows, V vocab.
#pragma once

namespace tinyds::cuda {

// tokens (N) written: for each row of logits (N, V), the token sample_token would choose with the same temperature,
// top_k, top_p, given uniforms[n] = the rng.uniform_double() it would draw (unused when temperature == 0, greedy).
// uniforms (N) in [0, 1). V <= 4096 (the row's ranking and probabilities live in shared memory).
void sample_tokens(int* tokens, const float* logits, const double* uniforms, int N, int V, float temperature,
                   int top_k, float top_p, int version = 0);

}  // namespace tinyds::cuda
