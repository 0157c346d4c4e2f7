// tinyds/train/bench_rollout.h — what `tinyds bench --rollout` measures: the time of batched rollouts
// (model/rollout.h), the RL stage's sampling, and the same batch through the PyTorch twin's kv-cache decode
// (tests/reference/decode.py via bench_torch.py --rollout).
//
// Shapes: B = P * G sequences (P distinct prompts, each repeated G times, as GRPO's groups), Pb prompt length of
// sequence b, N new tokens per sequence (max_new_tokens), V vocab.
//
// Same work on both sides: the same checkpoint, the same prompts (generated level-2 problems, ~50 tokens), every
// sequence sampled for exactly N tokens (no stop at <eos>: the stop id is -1, which no token has; a freshly
// initialised model would otherwise end its sequences at random lengths), temperature 1 over the tokenizer's ids.
// The random draws differ (tinyds's keyed Rng, torch's generator), the amount of work does not.
// tokens/s = B * N / median wall time of one rollout. Also reported: the CPU time of the process (all threads),
// which on cores shared with other work says what the rollout cost where the wall time says what it waited.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tinyds/model/rollout.h"
#include "tinyds/model/transformer.h"

namespace tinyds {

// P generated problems of `level` (test split, `seed`), each encoded as a prompt (<bos> question '\n') G times.
std::vector<std::vector<int>> rollout_bench_prompts(int P, int G, int level, uint64_t seed);

// Rollout options of the benchmark: temperature 1 (0 = greedy), N new tokens, ids < n_tokens, no stop at <eos>.
RolloutOptions rollout_bench_options(int max_new_tokens, int n_tokens, float temperature, uint64_t seed);

struct RolloutTimes {
  std::vector<double> wall_s, cpu_s;  // (repeats) per timed rollout
  long tokens = 0;                    // sampled tokens per rollout (B * N unless max_seq_len cut them)
};

// `warmup` untimed then `repeats` timed rollouts of the prompts (seed + repeat index for each).
RolloutTimes time_rollouts(const Transformer<float>& model, const std::vector<std::vector<int>>& prompts,
                           const RolloutOptions& opt, int warmup, int repeats);

// CPU seconds this process has used so far (all threads).
double process_cpu_seconds();

}  // namespace tinyds
