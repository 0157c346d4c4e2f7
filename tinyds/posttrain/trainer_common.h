// tinyds/posttrain/trainer_common.h — small pieces shared by the post-training trainers (the offline `tinyds distill`,
// `tinyds rm`, `tinyds dpo`, and the RL `tinyds grpo`): option checks, the policy and its frozen reference from one
// checkpoint, the metrics file, the training pool, its seeded order, held-out sets and evaluation per level,
// the MoE load balance of a step and number formatting for progress lines.
#pragma once
#include <cstdint>
#include <fstream>
#include <nlohmann/json_fwd.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/data/problem.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/model/transformer.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/trainer.h"

namespace tinyds {

// One line of a trainer's option check (its validate()): unless ok, throws "<option> = <value>: <why>", e.g.
// "--lr = 0: must be > 0". value is what the user gave, or a word such as "(none)" when an option is missing.
template <typename T>
void need(bool ok, const char* option, const T& value, const char* why) {
  if (!ok) throw_error(option, " = ", value, ": ", why);
}

// A policy to train and its frozen reference, both loaded from one checkpoint (`tinyds dpo`, `tinyds grpo`); the
// reference never gets gradients or an optimizer. The checkpoint's loaded copy of the weights is freed as soon as
// both models hold them, before the trainer allocates AdamW's moments.
struct PolicyAndReference {
  // Both models on `device` (tinyds/device/device.h): their weights in device memory on cuda.
  explicit PolicyAndReference(const std::string& ckpt, Device device = Device::cpu);
  Config config;                 // the checkpoint's
  Tokenizer tokenizer;           // the checkpoint's
  Transformer<float> policy;     // Role::policy: trained
  Transformer<float> reference;  // Role::reference: frozen, weights only

 private:
  PolicyAndReference(const LoadedCheckpoint& ck, Device device);
};

// Creates out_dir and opens <out_dir>/metrics.jsonl, emptied, for a run's JSON lines; throws naming the path if it
// cannot be written.
std::ofstream open_metrics(const std::string& out_dir);

// "%.*f" as a string (progress lines).
std::string format_fixed(double v, int digits);

// n_train generated problems per level of the train split (seed + 7919 * level, as `tinyds sft` and `tinyds grpo`
// draw theirs), keeping those that fit in max_seq_len with `spare` characters to spare (preference.h's
// fits_in_context). Throws naming the levels and max_seq_len if none fits; prints how many were dropped.
std::vector<Problem> posttrain_pool(const std::vector<int>& levels, int n_train, uint64_t seed, int max_seq_len,
                                    int spare, const std::string& label, bool quiet);

// A seeded permutation of 0..n-1 (Fisher-Yates); step s of a trainer uses positions s*P .. s*P+P-1, wrapping
// around, so what a step sees depends only on (seed, step).
std::vector<int> seeded_permutation(int n, uint64_t seed, uint64_t stream);
// The P entries of `order` that step `step` uses.
std::vector<int> step_rows(const std::vector<int>& order, int step, int P);

// The MoE load balance after a step (DESIGN 4.3), for a model with MoE layers: "maxvio" (per MoE layer, max load /
// mean load - 1) into the step's metrics record `rec` and " | maxvio <largest>" onto its progress text `extra`.
// Nothing for a dense model.
void add_maxvio(nlohmann::json& rec, std::string& extra, const Transformer<float>& model);

// The held-out set of `tinyds sft` / `tinyds eval` for each of `levels`: n problems of the test split drawn with
// cfg.train.seed (a checkpoint's config: the set it was evaluated on), as evaluate_levels takes them. No sets when
// n is 0 (no evaluation).
std::vector<std::vector<Problem>> heldout_per_level(const Config& cfg, const std::vector<int>& levels, int n);

// The before / after table of a post-training command: exact match per level, the change, and, where both
// evaluations kept their per-problem results, the change's paired standard error and McNemar's exact p.
// Nothing when either evaluation is empty.
void print_level_changes(const std::vector<LevelAccuracy>& before, const std::vector<LevelAccuracy>& after);

// Greedy exact match of `model` on heldout[i] (level levels[i]) for each i; one metrics line per level
// {"step", "eval_level", "eval_accuracy", "eval_n", "well_formed", "mean_completion_len"} (plus "model": who
// when who is not empty) and, unless quiet, a progress line with two examples.
std::vector<LevelAccuracy> evaluate_levels(Transformer<float>& model, const Tokenizer& tok,
                                           const std::vector<std::vector<Problem>>& heldout,
                                           const std::vector<int>& levels, int max_new_tokens, int step,
                                           std::ostream& metrics, const std::string& label, bool quiet,
                                           const std::string& who = "");

}  // namespace tinyds
