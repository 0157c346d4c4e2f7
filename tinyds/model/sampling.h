// tinyds/model/sampling.h — choosing the next token from logits, and batched generation.
//
// Greedy when temperature == 0; otherwise softmax(logits / temperature) restricted to the top_k most likely
// tokens (0 = all) and then to the smallest set whose probability reaches top_p (nucleus sampling,
// Holtzman et al. 2020), renormalised, sampled with a seeded Rng.
// Generation here recomputes the whole sequence for every new token (simple and obviously correct); the
// kv-cache decoder arrives with the architecture work and is tested equal to this.
#pragma once
#include <cstdint>
#include <vector>

#include "tinyds/core/rng.h"

namespace tinyds {

template <typename real>
class Transformer;  // model/transformer.h (not included: tinyds/device/ops.h includes this header)

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy
  int top_k = 0;             // 0 = no top-k filter
  float top_p = 1.0f;        // 1 = no nucleus filter
  int max_new_tokens = 64;
  uint64_t seed = 1;
};

// logits (V). Validates the parameters (temperature >= 0, top_k >= 0, 0 < top_p <= 1).
// Draws one rng.uniform_double() unless greedy (temperature 0 draws nothing).
int sample_token(const float* logits, int V, const SamplingParams& sp, Rng& rng);
// The same choice given the uniform u in [0, 1) that sample_token would draw (unused when greedy).
int sample_token_given(const float* logits, int V, const SamplingParams& sp, double u);
// tokens (N) = sample_token_given of each row of logits (N, V) with uniforms (N): the CPU reference of the CUDA
// kernel kernels/sampling.cu (same arguments; tinyds/device/ops.h dispatches between them).
void sample_tokens(int* tokens, const float* logits, const double* uniforms, int N, int V, float temperature,
                   int top_k, float top_p);

// Completes each prompt (token ids, starting with <bos>) until `eos` (included in the output), max_new_tokens,
// or the model's max_seq_len. Only ids < n_tokens are ever chosen: the model's vocab_size is padded past the
// tokenizer's vocabulary (to a GEMM-friendly 128), and those padding ids mean nothing. Prompts run in batches of
// up to `batch` rows, right-padded (causal attention makes the padding invisible to earlier positions).
// Returns the new tokens of each prompt.
std::vector<std::vector<int>> generate(Transformer<float>& model, const std::vector<std::vector<int>>& prompts,
                                       const SamplingParams& sp, int n_tokens, int eos, int pad, int batch = 64);

}  // namespace tinyds
