// tinyds/posttrain/rl_common.h — the skeleton the two online RL trainers share, `tinyds ppo` (ppo_trainer.h) and
// `tinyds grpo` (grpo_trainer.h): where the prompts come from and in which order, how the policy takes an optimizer
// step, and how a step's metrics line is written. What differs between them is only the update itself (PPO: critic,
// GAE and clipped losses; GRPO: group advantages and a KL penalty).
//
// Shapes: P prompts per step.
//
// The held-out evaluation both run is trainer_common.h's: heldout_per_level + evaluate_levels (greedy exact match
// per level, one metrics line per level), at the start, every eval_every steps and at the end.
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "tinyds/data/problem.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/model/transformer.h"
#include "tinyds/train/optimizer.h"

namespace tinyds {

// The training prompts of an RL run: n_per_level generated problems of each level (train split, seeded by
// seed + 7919 * level, as `tinyds sft` draws its own), keeping those whose prompt leaves room for at least one
// sampled token within max_seq_len (a longer one could never be answered). Step s uses positions s*P .. s*P+P-1 of
// one seeded permutation, wrapping around: every prompt once before any repeats, and a step's prompts depend only
// on (seed, step).
class PromptPool {
 public:
  // Throws naming the levels and max_seq_len if no prompt fits; prints how many were dropped unless quiet.
  // distractors: the share of each level's prompts given an irrelevant sentence just before the question asked
  // (data/distractors.h); 0 leaves every prompt as generated.
  PromptPool(const std::vector<int>& levels, int n_per_level, uint64_t seed, const Tokenizer& tok, int max_seq_len,
             const std::string& label, bool quiet, double distractors = 0);
  // (P) indices into problems() of step `step`'s prompts.
  std::vector<int> step_indices(int step, int P) const;
  const std::vector<Problem>& problems() const { return problems_; }
  const Problem& operator[](int i) const { return problems_[i]; }
  std::size_t size() const { return problems_.size(); }

 private:
  std::vector<Problem> problems_;
  std::vector<int> order_;  // seeded permutation of 0 .. size-1
};

// AdamW settings of an RL policy (trl's names where they exist). A fresh optimizer: the SFT moments describe
// another objective. The learning rate is constant after a linear warmup.
struct RLOptimizerOptions {
  // A fresh AdamW moves every weight by about lr from its first step on (m / sqrt(v) is +-1), so lr is a step size
  // in weight space: 1e-5 is the small preset's final SFT rate (larger rates threw the SFT model off, see
  // notebooks/EXPERIMENTS.md, "Post-training defaults").
  float lr = 1e-5f;               // peak AdamW learning rate (trl learning_rate), constant after the warmup
  int warmup_steps = 10;          // linear warmup of lr over this many optimizer steps
  float beta1 = 0.9f, beta2 = 0.99f, adam_eps = 1e-8f;
  float weight_decay = 0.0f;      // trl's default 0: decay would pull the policy away from the reference
  float max_grad_norm = 1.0f;     // global grad-norm clip (trl's name and default); 0 = off

  // AdamW's settings at 0-based optimizer step `optimizer_step`, with this peak learning rate.
  AdamWSettings at(int optimizer_step, float peak_lr) const;
};

struct RLStepNorm { double grad_norm; float lr; };  // grad norm before clipping; the lr the step used

// One optimizer step of `model` after its backward: global grad-norm clip, AdamW at the warmup-then-constant lr of
// optimizer step `optimizer_step` (0-based). The MoE router biases stay frozen in post-training (moe_balance.h).
RLStepNorm rl_optimizer_step(Transformer<float>& model, AdamW& adam, const RLOptimizerOptions& o, int optimizer_step);

// Writes one step's metrics line: the trainer's record `rec` plus the MoE load balance of the policy ("maxvio", per
// MoE layer; also " | maxvio <largest>" onto the progress text `extra`), then flushes so a crashed run keeps it.
void write_rl_step(std::ostream& metrics, nlohmann::json& rec, std::string& extra, const Transformer<float>& policy);

}  // namespace tinyds
