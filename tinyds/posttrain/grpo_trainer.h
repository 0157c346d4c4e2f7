// tinyds/posttrain/grpo_trainer.h — the R1-Zero-style RL loop of `tinyds grpo`: GRPO (DeepSeekMath arXiv
// 2402.03300, Algorithm 1) with rule-based rewards on GSM8K-style arithmetic (DESIGN sections 5 and 6).
//
// Shapes: P prompts per step, G = num_generations completions per prompt, B = P*G sequences stored in
// consecutive groups of G (grpo.h's layout), T columns of the teacher-forced batch (policy_batch.h), V vocab,
// N = B*T token positions.
//
// Two models, one checkpoint: the policy (trained, Role::policy, with grads and AdamW) and a frozen reference
// (Role::reference: weights only, never a gradient or an optimizer) loaded from the same --init checkpoint, so
// the KL term starts at 0 (exactly with ref_batch 0, see below) and measures how far RL has moved the SFT model.
//
// One step:
//   1. prompts:   P problems of the training pool (rl_common.h's PromptPool: a seeded permutation, so the order
//                 depends only on (seed, draw), the draw counting batches of P prompts), each repeated G times
//   2. rollout:   sample B completions with the policy (model/rollout.h: kv-cache Decoder, temperature / top-k / top-p,
//                 at most max_completion_length tokens, <eos> included); keep lp_old (B, T), the sampling
//                 policy's log-probs at the same temperature
//      Dynamic sampling (DAPO, arXiv 2503.14476, Eq. 11's constraint 0 < |{correct}| < G), sample_rounds R > 1:
//      if fewer than P of the step's groups are "mixed" (some completions right, some wrong), steps 1-2 run again
//      for R - 1 more batches of P prompts at once; the step trains on the first P mixed groups, topped up with the
//      earliest other groups if fewer were found. A group all right or all wrong has advantage 0 on accuracy (only
//      format differences), so without this most of a batch teaches nothing once a level is mostly solved or mostly
//      failed. B stays P*G: the update costs the same, each extra draw one more rollout (the cheap part of a step).
//   3. rewards:   R_i = w_acc * accuracy + w_fmt * format (reward.h), then advantages A_i per group (grpo.h;
//                 REINFORCE: R_i - group mean)
//      Credit by calculator line (credit_steps, spare_steps below): the loss mask leaves out the result tokens of
//      the right lines of a completion with A_i < 0 and of the wrong lines of one with A_i > 0, so a wrong answer
//      does not push down the digits of its right arithmetic (a process reward in the form of a mask: the steps
//      rule of reward.h checks each line; notebooks/EXPERIMENTS.md, "Credit by calculator line").
//   4. reference: lp_ref (B, T) from the frozen reference on the packed batch (once per step), in micro-batches of
//                 ref_batch sequences (frozen.h: a frozen model needs no activations for a backward pass)
//   5. mu = num_iterations passes, each an optimizer step (trl's num_iterations):
//        logits = policy.forward(inputs)              (N, V)
//        lp     = log softmax(logits / tau)[targets]  (N)     logprobs.h, tau = the sampling temperature
//        L      = grpo_loss(lp, lp_old, lp_ref, A)            grpo.h (or reinforce.h)
//        dlp -> dlogits (logprobs_backward) -> policy.backward_from_logits, grad-norm clip, AdamW
//        (the MoE router biases stay frozen in post-training: moe_balance.h)
//      With ptx_coef gamma > 0 each pass first puts gamma * d(SFT objective) of one SFT batch in the gradients
//      (PPO-ptx's term, InstructGPT arXiv 2203.02155 Eq. 2; ptx.h), and the RL loss's gradient is added to it.
//      With mu = 1 the ratio r = exp(lp - lp_old) is 1 up to rounding (lp_old comes from the kv-cache decoder,
//      lp from the teacher-forced forward), so the clip never acts: GRPO is then a plain policy gradient with
//      std-scaled group advantages plus the k3 KL penalty. mu > 1 reuses the batch and the clip matters.
// On cuda (opt.device) every tensor of steps 2, 4 and 5 lives in device memory and every op is a kernel; the host
// launches, copies the sampled tokens back to score them (step 3 is rules on strings), uploads the rewards and
// reads the loss and metrics back. REINFORCE's loss has no kernel (GRPO only on cuda).
// Logged per step (progress line + <out_dir>/metrics.jsonl): reward mean / std, accuracy, format rate, k3 KL to
// the reference, clip fraction, entropy, mean completion length, degenerate groups, tokens/s, ledger peak bytes.
// Held-out greedy exact match per level at the start, every eval_every steps and at the end; checkpoints
// <out_dir>/latest.safetensors every ckpt_every steps and <out_dir>/final.safetensors at the end.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tinyds/data/batch.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/device/device.h"
#include "tinyds/model/transformer.h"
#include "tinyds/posttrain/losses/grpo.h"
#include "tinyds/posttrain/reward.h"
#include "tinyds/posttrain/policy_batch.h"
#include "tinyds/posttrain/rl_common.h"
#include "tinyds/train/optimizer.h"
#include "tinyds/train/trainer.h"

namespace tinyds {

enum class RLAlgo { grpo, reinforce };
const char* rl_algo_name(RLAlgo a);               // "grpo", "reinforce"
RLAlgo parse_rl_algo(const std::string& s);        // error naming the value and the choices
GRPOLossType parse_grpo_loss_type(const std::string& s);  // "grpo" | "bnpo" | "dapo" | "dr_grpo"

// AdamW (lr 5e-5, constant after warmup: see cmd_grpo.cpp for why; beta2 0.99; max_grad_norm 1) comes from
// RLOptimizerOptions (rl_common.h), shared with PPO.
struct GRPOTrainOptions : RLOptimizerOptions {
  std::string init_ckpt;          // policy and reference weights (e.g. from `tinyds sft`); required
  std::string out_dir = "runs/grpo";
  RLAlgo algo = RLAlgo::grpo;
  GRPOConfig grpo;                // beta 0.04, epsilon 0.2, epsilon_high, num_generations G 8, loss_type grpo,
                                  // scale_rewards on; grpo.max_completion_length is set from the field below
  int max_completion_length = 96; // new tokens per completion, <eos> included (trl's name), e.g. 96
  int num_iterations = 1;         // mu: optimizer steps per rollout batch (trl's name; the paper's mu)
  int prompts_per_step = 8;       // P: distinct prompts per step (B = P * G completions)
  int steps = 100;                // RL steps (rollout + mu optimizer steps each)
  int sample_rounds = 1;          // dynamic sampling: most draws of P prompts per step (1 = off; see the header)
  float temperature = 1.0f;       // sampling temperature tau; log-probs are taken at the same tau (trl 1.0)
  int top_k = 0;                  // 0 = off
  float top_p = 1.0f;             // 1 = off
  RewardRules reward_rules;       // weights accuracy 1, format 1 (R1: equal); accuracy only with every calculator
                                  // annotation right (check_steps, reward.h)
  bool credit_steps = false;      // credit by calculator line (spare_steps below): a completion below its group's
                                  // mean gets no gradient on the results of its right lines, one above it none on
                                  // the results of its wrong lines
  float ptx_coef = 0;             // gamma of InstructGPT's PPO-ptx (arXiv 2203.02155, Eq. 2): each optimizer step also
                                  // descends gamma x the SFT objective on one batch of the checkpoint's own SFT data
                                  // (its config's levels, seed and batch size). 0 = off (grpo_recipe: 1)
  std::vector<int> levels = {2, 3};  // training prompts: generated problems of these levels (train split)
  int n_train = 4000;             // generated training problems per level
  double prompt_distractors = 0;  // share of the training prompts given an irrelevant sentence before the question
                                  // asked (PromptPool, data/distractors.h); held-out problems are never changed
  std::vector<int> eval_levels;   // held-out levels evaluated (test split); empty = the training levels
  int eval_every = 10;            // RL steps between held-out evaluations (0 = start and end only)
  int eval_problems = 100;        // held-out problems per level (test split; 0 = no evaluation)
  int ckpt_every = 0;             // RL steps between latest.safetensors (0 = only final.safetensors)
  int log_every = 1;              // RL steps between progress lines
  int rollout_batch = 64;         // sequences decoded together (results do not depend on it)
  Device device = Device::cpu;    // where the policy, the reference, AdamW, the rollouts and the losses run
                                  // (tinyds/device/device.h); rewards are scored on the host either way
  int ref_batch = 8;              // sequences per forward of the frozen reference (frozen.h); 0 = the whole batch.
                                  // Micro-batches hold 8 sequences' activations instead of B, but the GEMMs block
                                  // differently, so lp_ref differs from the policy's lp by float rounding (~1e-7):
                                  // the KL starts at ~1e-15 instead of exactly 0. 0 keeps them bit-identical.
  uint64_t seed = 1234;           // prompt order and sampling
  bool quiet = false;
  std::string label = "grpo";
};

// What one step measured (also one line of metrics.jsonl).
struct GRPOStepStats {
  int step = 0;
  double loss = 0;              // of the first of the mu passes
  double reward_mean = 0, reward_std = 0;  // std: mean over groups of the unbiased group std
  double accuracy = 0;          // mean accuracy reward over every completion sampled this step (all draws)
  double format = 0;            // fraction of them with format reward 1
  double kl = 0;                // masked mean of k3(lp, lp_ref) over completion tokens, first pass
  double clip_fraction = 0;     // GRPO: tokens whose gradient the clip removed, mean over the mu passes
  double entropy = 0;           // masked mean per-token entropy of the policy at tau, first pass
  double completion_len = 0;    // mean completion tokens (<eos> included) of every completion sampled this step
  double eos_rate = 0;          // fraction of them that ended with <eos> (not cut off)
  int degenerate_groups = 0;    // trained groups whose G rewards were all equal (zero advantage)
  int sampled_groups = 0;       // groups sampled this step: P, or P * R with dynamic sampling
  int mixed_groups = 0;         // of which some completions were right and some wrong
  double ptx_loss = 0;          // the SFT objective on this step's ptx batch, first pass (0 when ptx_coef is 0)
  double spared = 0;            // fraction of the trained completion tokens credit_steps left out of the loss
  double grad_norm = 0;         // before clipping, last pass
  double lr = 0;
  double seconds = 0;           // wall time of the whole step
  double rollout_seconds = 0;   // of which sampling
  long tokens = 0;              // completion tokens sampled this step (all draws)
  double tokens_per_s = 0;      // tokens / seconds
};

struct GRPOEval { int step; LevelAccuracy acc; };

struct GRPOResult {
  std::vector<GRPOStepStats> steps;   // one per step run
  std::vector<GRPOEval> evals;        // every evaluation (start, periodic, end), per level
  std::vector<LevelAccuracy> before;  // per level at step 0
  std::vector<LevelAccuracy> after;   // per level at the end
  std::string final_ckpt;
  double seconds = 0;
  std::size_t peak_bytes = 0;         // ledger peak over the run (all roles and categories)
};

// Checks the options (G >= 2, P >= 1, mu >= 1, temperature > 0, levels 1..4, ...) and throws tinyds::Error
// naming the option (by its command-line name) and the value.
void validate(const GRPOTrainOptions& opt);

// The recipe `tinyds grpo` starts from and the demo's stage 2 runs: GRPOTrainOptions' plain (trl-like) defaults
// with the settings measured on the demo's SFT checkpoints (levels 2-3, evaluation 1-3, 120 steps at lr 3e-5, dynamic
// sampling, the steps rule, credit by calculator line, the SFT term at gamma 1; each explained where it is set,
// grpo_trainer.cpp).
GRPOTrainOptions grpo_recipe();

// The whole run: load --init into policy and reference, train, evaluate, checkpoint.
GRPOResult run_grpo(const GRPOTrainOptions& opt);

// ---- the pieces of one step, exposed for tests ----

// Scores the B completions of rollout r (answers (B): the problem answer of each row).
std::vector<RewardBreakdown> score_rollout(const Rollout& r, const Tokenizer& tok, const std::vector<int64_t>& answers,
                                           const RewardRules& w);

// Credit by calculator line, on the packed batch's mask (B, T) (policy_batch.h) of rollout r with rewards (B) in
// groups of G: zeroes the result tokens (reward.h's check_steps, decoded with tok) of every right line of a
// completion whose reward is below its group's mean (negative advantage: the line is not what went wrong, and
// pushing its digits down taught level-1 arithmetic errors) and of every wrong line of one above the mean. Returns
// the number of tokens zeroed.
long spare_steps(Buffer<float>& mask, const Rollout& r, const std::vector<double>& rewards, int G,
                 const Tokenizer& tok);

// Steps 3-5 above on a fixed rollout: advantages from rewards (B), lp_ref from `reference` (nullptr: no KL term
// and no KL metric, which needs beta == 0), then num_iterations optimizer steps of `policy`. `optimizer_step` is
// the 0-based count of optimizer steps already taken (for the warmup). Fills the loss / kl / clip / entropy /
// grad-norm / lr / degenerate / reward fields of the result.
// A diverged pass (a forward that fails, a non-finite loss or gradient, a non-finite parameter after the update)
// throws the error of train/finite_check.h naming the trainer's step optimizer_step / num_iterations + 1.
GRPOStepStats grpo_update(Transformer<float>& policy, Transformer<float>* reference, AdamW& adam,
                          const Rollout& r, const std::vector<double>& rewards, const GRPOTrainOptions& opt,
                          int optimizer_step, const Tokenizer* tok = nullptr,  // tok: needed by credit_steps
                          const Batch* ptx = nullptr);  // the SFT batch of ptx_coef (needed when it is > 0)

}  // namespace tinyds
