// tests/util/rollout_util.h — fixtures shared by the rollout tests (tests/model/rollout_test.cpp) and the tests of a
// rollout packed for the policy's forward (tests/posttrain/policy_batch_test.cpp).
//
// Shapes: nano-dense preset (C 32, 2 layers, V 128, max_seq_len 64).
#pragma once
#include <cstdint>
#include <vector>

#include "tinyds/model/config.h"
#include "tinyds/model/rollout.h"

namespace tinyds::test {

// The dense nano with init_std 0.2 instead of the preset's 0.02, so logits are O(1) and far from uniform: greedy
// choices are then not near-ties that decoding-order rounding could flip, and a log-prob taken from the wrong logits
// row or at the wrong temperature is visibly wrong. Dense because in the DeepSeek-style nano a randomly initialised
// router scores every expert ~0.5, and a near-tied top-K choice can flip between the batched full forward and the
// one-token decode (rounding).
inline ModelConfig rollout_nano() {
  ModelConfig m = Config::preset("nano-dense").model;
  m.init_std = 0.2f;
  return m;
}

// Eight short prompts of lengths 1..8 over a vocabulary of 8 ids, each starting with <bos> (1).
inline std::vector<std::vector<int>> short_prompts() {
  std::vector<std::vector<int>> p;
  for (int n = 1; n <= 8; n++) {
    std::vector<int> q = {1};
    for (int i = 1; i < n; i++) q.push_back(3 + (n + i) % 5);
    p.push_back(q);
  }
  return p;
}

// Rollout options: sampling temperature and length, the token range, <eos>, padding id 0, the sampling seed.
inline RolloutOptions rollout_options(float temperature, int max_new, int n_tokens, int eos, uint64_t seed = 7) {
  RolloutOptions o;
  o.sampling.temperature = temperature;
  o.sampling.max_new_tokens = max_new;
  o.sampling.seed = seed;
  o.n_tokens = n_tokens;
  o.eos = eos;
  o.pad = 0;
  return o;
}

}  // namespace tinyds::test
