// tinyds/posttrain/dpo_trainer.h — the preference loop of `tinyds dpo`: DPO (Rafailov et al. 2023) or IPO on pairs
// "the right solution vs the policy's own wrong answer" or "vs the same solution with one result made wrong" of
// generated problems (DESIGN 6; trl DPOTrainer).
//
// Shapes: P pairs per step (batch_size); the pair batch has B = 2P rows, rows [0, P) chosen and [P, 2P) rejected
// (preference.h), T columns, V vocab, N = B*T.
//
// Two models, one checkpoint: the policy (Role::policy, trained) and a frozen reference (Role::reference, weights
// only) loaded from the same --init checkpoint, so every implicit reward beta (s - s_ref) starts at exactly 0.
//
// One step:
//   1. pairs:     --rejected own: problems in a seeded order, decoded greedily by the policy until P of them are
//                 answered wrong (own_answers.h), each against that answer; --rejected corrupted: P training
//                 problems (what a step sees depends only on (seed, step)), each with a corrupted copy
//                 (preference.h: final answer, an intermediate result, or mixed)
//   2. reference: lp_ref (B, T) = log softmax(reference logits)[targets] on the completion tokens (prompt masked)
//   3. policy:    lp (B, T) likewise;  L = dpo_loss(lp_w, lp_ref_w, lp_l, lp_ref_l)        dpo.h
//                 + rpo_alpha * NLL_w, NLL_w = -(sum of lp over the chosen rows' completion tokens) / their count
//                 (RPO: Pang et al. 2024, arXiv 2404.19733 Eq. 1-3; trl DPOConfig.rpo_alpha)
//   4. dlp -> dlogits (logprobs_backward) -> policy.backward_from_logits, grad-norm clip, AdamW
//      (the MoE router biases stay frozen in post-training: moe_balance.h)
// Logged per step (progress line + <out_dir>/metrics.jsonl, trl's names with '_'): loss, rewards_chosen,
// rewards_rejected, rewards_margin, rewards_accuracy, nll (the chosen rows' NLL_w), pairs and drawn (pairs trained
// on, problems used), logps_chosen, logps_rejected (mean summed log-prob of a
// completion under the policy), kl (k3 estimate of KL(policy || reference), mean over the pairs' completion tokens:
// the tokens are the data's, not the policy's samples, so it is a cheap proxy, 0 at the start), grad_norm, lr,
// tokens/s, memory. Held-out greedy exact match per level before, every eval_every steps and after; checkpoints
// <out_dir>/latest.safetensors every ckpt_every steps and <out_dir>/final.safetensors (an ordinary policy checkpoint).
// Rejected rows (--rejected): `corrupted` (above), or `own`: the policy's own greedy answer where the rule reward
// calls it wrong (own_answers.h, SPIN's pairs). A right answer would be a pair with nothing to learn, so those
// problems are passed over: up to own_rounds rounds of P problems are decoded to find P pairs.
// With credit_steps (--credit-steps) the rejected row's right calculator results after the point where it leaves
// the chosen one are left out of the loss (preference.h, spared_results): its wrong choice is pushed down, not the
// arithmetic that follows from it.
// Not implemented: pairs of sampled completions ranked by the rule reward (trl's online DPO).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tinyds/data/tokenizer.h"
#include "tinyds/model/transformer.h"
#include "tinyds/posttrain/losses/dpo.h"
#include "tinyds/posttrain/own_answers.h"
#include "tinyds/posttrain/preference.h"
#include "tinyds/train/optimizer.h"
#include "tinyds/train/trainer.h"

namespace tinyds {

DPOLossType parse_dpo_loss_type(const std::string& s);  // "sigmoid" | "ipo"; error naming the value
const char* dpo_loss_type_name(DPOLossType t);

struct DPOTrainOptions {
  std::string init_ckpt;          // policy and reference weights (e.g. from `tinyds sft`); required
  std::string out_dir = "runs/dpo";
  DPOConfig dpo;                  // beta 0.1, loss_type sigmoid, length_normalize off (trl defaults)
  // The defaults' pairs: the SFT model's own wrong answers on levels 2-3 (level 3 is where it is wrong: 2.5% greedy
  // on the default seed). From the demo's SFT checkpoints level 3 rose by +4.5 to +14.0 on seven seeds (corrupted
  // pairs: +0.5), levels 1-2 moved -2.0 to +2.5. notebooks/EXPERIMENTS.md, "DPO and the reward model on the model's
  // own mistakes".
  PairSource rejected = PairSource::own;            // where the rejected solution comes from (above)
  PairCorruption corruption = PairCorruption::mixed;  // how the rejected solution is made wrong (corrupted)
  int own_rounds = 4;             // own: most rounds of P problems decoded per step to find P wrong answers
  double rpo_alpha = 0.0;         // weight of the chosen rows' NLL added to the loss (RPO; trl rpo_alpha; below)
  bool credit_steps = true;       // the rejected row's right results after the difference stay out of the loss (above)
  int steps = 100;                // optimizer steps
  int batch_size = 8;             // P pairs per step (trl per_device_train_batch_size 8); 2P rows per forward
  std::vector<int> levels = {2, 3};  // training pairs: generated problems of these levels
  std::vector<int> eval_levels = {1, 2, 3};  // held-out levels evaluated (test split); empty = the training levels
  int n_train = 4000;             // generated training problems per level
  // AdamW: constant lr after a linear warmup (trl: linear decay to 0; a short run here needs no decay)
  float lr = 5e-6f;               // trl learning_rate 1e-6 is for billion-parameter models; see cmd_dpo.cpp
  int warmup_steps = 10;
  float beta1 = 0.9f, beta2 = 0.999f, adam_eps = 1e-8f;  // torch / trl defaults
  float weight_decay = 0.0f;      // trl 0
  float max_grad_norm = 1.0f;     // global grad-norm clip (trl 1.0); 0 = off
  int eval_every = 0;             // steps between held-out evaluations (0 = before and after only)
  int eval_problems = 100;        // held-out problems per level (test split; 0 = no evaluation)
  int max_new_tokens = 96;        // longest completion in the held-out evaluation
  int ckpt_every = 0;             // steps between latest.safetensors (0 = only final.safetensors)
  int log_every = 10;             // steps between progress lines
  uint64_t seed = 1234;           // pair order and corruptions
  bool quiet = false;
  std::string label = "dpo";
};

// What one step measured (also one line of metrics.jsonl).
struct DPOStepStats {
  int step = 0;
  DPOStats dpo;                 // loss (the DPO term), rewards_chosen / rejected / margin / accuracy
  double nll = 0;               // NLL_w of the chosen rows (logged whatever rpo_alpha; in the loss times rpo_alpha)
  double logps_chosen = 0, logps_rejected = 0;  // mean over pairs of sum_t m lp (policy, before the step)
  double kl = 0;                // masked mean of k3(lp, lp_ref) over all completion tokens of the 2P rows
  int pairs = 0;                // pairs trained on (own: fewer than P when the rounds found fewer wrong answers)
  int drawn = 0;                // problems this step used (own: decoded; corrupted: P)
  double grad_norm = 0;         // before clipping
  double lr = 0;
  double seconds = 0;
  long tokens = 0;              // B*T positions forwarded by the policy (the reference forwards as many)
  double tokens_per_s = 0;
};

struct DPOResult {
  std::vector<DPOStepStats> steps;
  std::vector<LevelAccuracy> before, after;  // held-out exact match per level
  std::string final_ckpt;
  double seconds = 0;
  std::size_t peak_bytes = 0;   // ledger peak over the run
};

// Checks the options and throws tinyds::Error naming the option (by its command-line name) and the value.
void validate(const DPOTrainOptions& opt);

// The whole run: load --init into policy and reference, evaluate, train, evaluate, checkpoint.
DPOResult run_dpo(const DPOTrainOptions& opt);

// One optimizer step on the pair rows (2P problems, preference.h's layout): steps 2-4 above. optimizer_step is the
// 0-based count of steps already taken (for the warmup). Fills every field but step, seconds and tokens_per_s.
// A diverged step (a forward that fails, a non-finite loss or gradient, a non-finite parameter after the update)
// throws the error of train/finite_check.h naming step optimizer_step + 1.
// With opt.credit_steps the rejected rows' spared_results (preference.h) are masked.
DPOStepStats dpo_update(Transformer<float>& policy, Transformer<float>& reference, AdamW& adam,
                        const std::vector<Problem>& rows, const Tokenizer& tok, const DPOTrainOptions& opt,
                        int optimizer_step);

}  // namespace tinyds
