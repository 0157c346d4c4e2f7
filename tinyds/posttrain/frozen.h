// tinyds/posttrain/frozen.h — forward passes of frozen models (the KL reference, a reward model) in micro-batches.
//
// Shapes: B sequences, T columns, V vocab, N = B*T rows; `rows` = sequences per micro-batch (R below).
//
// A training forward keeps every layer's activations for the backward pass, sized for the whole batch
// (Transformer::ensure_activations(B, T)). A frozen model never runs a backward pass, so nothing needs the whole
// batch's activations at once: it runs on R sequences at a time and keeps only what the loss needs from each
// micro-batch (the per-token log-probs, or the reward head's values). Its activation buffers are then sized for R
// sequences instead of B: on `small` with 64 sampled sequences of ~200 tokens that is ~300 MiB less per frozen
// model (measured by `tinyds memory`), the difference between "GRPO needs ~0.6x PPO's memory" and "~0.5x".
// The results are the same as one full-batch forward up to the summation order of the GEMMs (rows of a GEMM
// do not interact, so in practice they are identical; the tests compare to 1e-6).
#pragma once
#include "tinyds/model/transformer.h"
#include "tinyds/posttrain/critic.h"

namespace tinyds {

// lp (B, T) written: log softmax(logits / tau)[targets] of `model` on inputs (B, T); rows with target < 0 get 0
// (logprobs.h). rows >= 1. inputs on the host (Transformer::forward uploads them); lp and targets in the model's
// place (device memory for a cuda model: the log-probs are a kernel on its device logits).
void frozen_logprobs(float* lp, Transformer<float>& model, const int* inputs, const int* targets, int B, int T,
                     float tau, int rows = 8);

// values (B, T) written: the frozen critic / reward model's head at every position of inputs (B, T). rows >= 1.
void frozen_values(float* values, Critic<float>& model, const int* inputs, int B, int T, int rows = 8);

}  // namespace tinyds
