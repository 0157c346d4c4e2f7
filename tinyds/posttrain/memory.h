// tinyds/posttrain/memory.h — measured memory of one optimisation step of each post-training method, by model role
// and category (DESIGN 1.3: "measured bytes by category and role, not prose"), for `tinyds memory`.
//
// Shapes: P prompts, G generations per prompt, S = P*G sequences per step for every method, C d_model.
// One step of each, on the same policy config and initial weights, one method at a time (all its buffers are freed
// before the next; the ledger's peaks are reset in between, and so is the kernel's peak-RSS counter where
// /proc/self/clear_refs allows it):
//   sft     policy only: S problems (question + answer), masked cross-entropy, AdamW
//   dpo     policy + frozen reference: S/2 chosen/rejected pairs (the right answer vs the same answer with a wrong
//           final number), both halves in one forward of S rows (posttrain/losses/dpo.h)
//   ppo     policy, reference, critic: S prompt rows, one completion each, one PPO epoch (posttrain/ppo_trainer.h).
//           The rows are GRPO's (each of the P prompts G times) with GRPO's sampling seed, so both rollouts sample the
//           very same tokens and every difference in the table is the algorithm's, not the sampled lengths'
//   ppo+rm  the same with a frozen reward model (trunk + scalar head, Role::reward) producing the score
//   grpo    policy + reference: P prompts x G completions, one update of the GRPO trainer (grpo_update in
//           posttrain/grpo_trainer.h, mu = 1), so its buffers sit in the categories the trainer puts them in
// The analytical prediction of the model-state cells (weights, grads, adam_m, adam_v; 4 bytes per float):
//   a transformer's weights   = 4 (n_params + n_router_bias)   (router biases: E per MoE layer, MTP blocks included)
//   its grads, adam_m, adam_v = 4 n_params each               (the biases are buffers, not parameters)
//   a scalar head adds C + 1 to each (critic: all four; reward model: weights only, it is frozen)
// Activations, kv-cache and rollout buffers depend on the sampled lengths and have no closed form here. Frozen
// models (reference, reward model) run their forward in micro-batches of 8 sequences (frozen.h), so their
// activations are those of 8 sequences, not S.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tinyds/core/ledger.h"
#include "tinyds/model/config.h"
#include "tinyds/train/checkpoint.h"

namespace tinyds {

struct MemoryOptions {
  int prompts = 4;              // P prompts per step
  int num_generations = 8;      // G: GRPO samples G completions per prompt; PPO/SFT/DPO get P*G sequences
  int response_length = 64;     // max new tokens of a sampled completion (PPO, GRPO)
  float temperature = 1.0f;     // sampling temperature (PPO, GRPO)
  uint64_t seed = 1234;         // problems and sampling
  std::vector<std::string> methods = {"sft", "dpo", "ppo", "ppo+rm", "grpo"};
};

struct MethodMemory {
  std::string method;
  int sequences = 0;            // rows of the training forward (B)
  int columns = 0;              // its T
  std::size_t peak[kNumRoles][kNumCategories] = {};       // peak bytes of each cell during the step
  std::size_t predicted[kNumRoles][kNumCategories] = {};  // formula for weights/grads/adam_m/adam_v (others 0)
  std::size_t peak_total = 0;   // simultaneous peak of all ledgered bytes during the step
  std::size_t rss_start = 0;    // process RSS (VmRSS) when the step started
  std::size_t rss_peak = 0;     // process peak RSS (VmHWM) at the end of the step
  bool rss_was_reset = false;   // VmHWM was reset at the start (else it is the process's peak so far)
  double seconds = 0;

  std::size_t role_total(Role r) const;   // sum of the role's cell peaks
  std::size_t cells_total() const;        // sum of every cell peak (>= peak_total)
  std::size_t state_total() const;        // weights + grads + adam_m + adam_v over all roles
};

// The model-state formula above for `method` (one of MemoryOptions::methods) and model config m.
void predict_state_bytes(MethodMemory& out, const ModelConfig& m);
// True for the four categories the formula covers.
bool is_state_category(Category c);

// Runs one step of each method in opt.methods and measures it. init: start from these weights (else cfg's seed).
std::vector<MethodMemory> measure_memory(const Config& cfg, const LoadedCheckpoint* init, const MemoryOptions& opt);

// The report: per method, the role x category table with the formula row under each role; then totals and the
// GRPO/PPO ratios (when both were measured).
std::string memory_report(const std::vector<MethodMemory>& ms);

}  // namespace tinyds
