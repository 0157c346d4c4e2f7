// tinyds/posttrain/policy_batch.h — a rollout (model/rollout.h) as a teacher-forced batch for the policy's forward
// pass in PPO and GRPO.
//
// Shapes: B sequences, T = max_b length(b) - 1 columns (at least 1).
//
// Column t of row b holds the position that predicts token t+1 of sequence b: its input is tokens[b][t], its target
// tokens[b][t+1], and its mask and lp_old those the rollout recorded for token t+1 (1 and the sampling log-prob
// exactly at sampled tokens).
#pragma once
#include "tinyds/core/ledger.h"
#include "tinyds/model/rollout.h"

namespace tinyds {

// A rollout as a teacher-forced batch: row b's inputs are its sequence without the last token and its targets
// the sequence shifted by one, so the forward's logits at column t predict targets[t] = tokens[b][t+1].
struct PolicyBatch {
  int B = 0, T = 0;           // T = max_b length(b) - 1 (at least 1)
  Buffer<int> inputs;         // (B, T) tokens[b][0..T), <pad> past the sequence
  Buffer<int> targets;        // (B, T) tokens[b][1..T], -1 past the sequence's end (ignored by the forward's loss)
  Buffer<float> mask;         // (B, T) rollout mask shifted: mask[b][t] = rollout.mask[b][t+1] (sampled targets)
  Buffer<float> old_logprobs; // (B, T) lp_old of targets[b][t] where mask is 1, else 0
};
PolicyBatch pack_for_forward(const Rollout& r, int pad = 0, Role role = Role::policy);

}  // namespace tinyds
