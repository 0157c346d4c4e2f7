// tinyds/train/bench_profile.h — where the time of one training step goes, op by op.
//
// Shapes: B batch, T time, N = B*T rows, C d_model, V vocab, H heads, Hkv kv heads, D head_dim, F ffn_hidden.
//
// Each op of a training step of Transformer<float> is timed IN ISOLATION on random inputs of exactly the shapes
// the model gives it (one untimed call, then repeated calls, median), and multiplied by how many times one step
// calls it (the counts mirror Transformer::forward/backward, layer_forward/layer_backward and the optimizer step
// in time_training_steps). Two calls of the same op on the same shapes are one row (e.g. wq, wk, wv and wo
// are all (N, 256) -> (N, 256) in the base preset). The sum of the rows, compared with a measured step, shows
// what isolation misses ("other": loops in the model, cache misses between ops, thread start-up).
#pragma once
#include <string>
#include <vector>

#include "tinyds/model/config.h"

namespace tinyds {

struct OpProfileRow {
  std::string op;        // "matmul fwd", "attention bwd", "adamw step", ...
  std::string shape;     // the shapes it runs on, e.g. "(2048,256) -> (2048,683)"
  std::string what;      // which tensors / call sites, e.g. "w1 w3"
  int calls = 0;         // calls per training step
  double ms_per_call = 0;
  int reps = 0;          // timed repetitions behind the median
  double ms_per_step() const { return ms_per_call * calls; }
};

// Rows in the order they were measured (sort by ms_per_step() to print). Each op is repeated at least
// `min_reps` times and until ~30 ms have been spent on it (at most 50 times).
std::vector<OpProfileRow> profile_training_ops(const Config& cfg, int min_reps = 5);

}  // namespace tinyds
