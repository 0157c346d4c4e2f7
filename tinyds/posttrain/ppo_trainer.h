// tinyds/posttrain/ppo_trainer.h — the PPO trainer for `tinyds ppo` (DESIGN 6, PPO with GAE; trl PPOTrainer and
// "The N implementation details of RLHF with PPO").
//
// Shapes: B = batch_size prompts per step, one completion each (so B sequences); T = the packed batch's columns
// (longest prompt + completion - 1); N = B*T; V vocab. All per-token tensors are (B, T) in PolicyBatch layout
// (policy_batch.h): column t holds the log-prob / value of the position that predicts token t+1.
//
// Four models (the memory PPO pays, `tinyds memory`):
//   policy     Transformer<float>, Role::policy, trained (AdamW)
//   reference  Transformer<float>, Role::reference, frozen copy of the initial policy (for the KL penalty)
//   critic     Critic<float> (critic.h), Role::critic: trunk initialised from the policy + zero value head, trained
//   reward     optional Critic<float>, Role::reward, frozen: a learned reward model in place of the rule reward
//              (untrained here: it exists for the memory comparison; `tinyds ppo` uses the rule reward)
//
// One step (make_experience, then num_ppo_epochs x update):
//   1. rollout: B prompts -> completions, lp_old                       (model/rollout.h)
//   2. scores:  rule reward accuracy + format of each completion        (reward.h)
//      lp_ref:  reference forward;  values_old: critic forward
//   3. r_t = -kl_coef (lp_old - lp_ref), + score at the last token      (ppo_rewards, ppo.h)
//      GAE(gamma, lam) -> advantages, returns; whiten advantages         (gae.h)
//   4. each epoch, on the whole batch (trl num_mini_batches = 1): policy and critic forward, clipped policy loss +
//      vf_coef * clipped value loss (ppo.h), backward into both, grad-norm clip, AdamW on both (the MoE router
//      biases stay frozen in post-training: moe_balance.h). During the first freezing_actor_steps steps only the
//      critic's half of this runs (no policy backward, no policy AdamW step). With ptx_coef gamma > 0 the policy's
//      gradient first gets gamma * d(SFT objective) of one SFT batch (PPO-ptx, ptx.h), and the PPO loss's is added.
// The prompt pool and order, the AdamW settings, the held-out evaluation and the metrics lines are GRPO's
// (rl_common.h); only the update differs.
// Logs per step: whether the actor was frozen, reward mean/std, accuracy, format rate, KL, clip fractions, value
// loss, entropy, completion length, tokens/s, memory; one JSON line per step in <out_dir>/metrics.jsonl; checkpoints
// of policy and critic.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "tinyds/data/problem.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/model/config.h"
#include "tinyds/model/transformer.h"
#include "tinyds/posttrain/critic.h"
#include "tinyds/posttrain/losses/ppo.h"
#include "tinyds/posttrain/reward.h"
#include "tinyds/posttrain/rl_common.h"
#include "tinyds/posttrain/policy_batch.h"
#include "tinyds/train/batch_source.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/optimizer.h"
#include "tinyds/train/trainer.h"

namespace tinyds {

// Hyper-parameters named as trl's PPOConfig; defaults stated where they differ. AdamW (lr 1e-5, beta2 0.99,
// max_grad_norm 1, weight_decay 0, 10-step warmup) is RLOptimizerOptions (rl_common.h), shared with GRPO; lr is the
// policy's (trl 3e-6 for billion-parameter models). `tinyds ppo` starts from ppo_recipe() below.
struct PPOTrainerOptions : RLOptimizerOptions {
  // 2 PPO epochs instead of trl's 4: on 2 CPU cores each epoch (policy + critic forward and backward) costs several
  // times the rollout, so 4 epochs would nearly double the step time for a smaller gain per sample.
  PPOTrainerOptions() { ppo.num_ppo_epochs = 2; }
  PPOConfig ppo;                    // kl_coef 0.05, gamma 1, lam 0.95, cliprange 0.2, cliprange_value 0.2, vf_coef 0.1;
                                    // num_ppo_epochs: trl 4, here 2 by default (see the constructor)
  int steps = 100;                  // PPO iterations (trl counts total_episodes = steps * batch_size)
  int batch_size = 16;              // prompts per step = sampled sequences (one completion per prompt)
  // The critic's value head starts untrained and its weights never reach the policy: it may move faster.
  double critic_learning_rate = 1e-4; // critic AdamW lr; < 0: the same as lr (trl: one optimizer for both)
  // The first steps train only the critic (OpenRLHF's freezing_actor_steps): its value head starts at zero, and until
  // it has learned what a prompt is worth the whitened advantages mostly say which prompts are easy (level 2 against
  // level 3), not which completion of a prompt was better. Off by default: 30 such steps before 100 at lr 1e-5 took
  // away about what halving the lr does (-0.5 / -0.4 / +1.5 and -0.9 / -2.3 / +0.7 on the first two checkpoints of
  // ppo_recipe()'s comment), and at 5e-6 they only shrank the level-3 gain (+0.4 / +0.5 / +0.9 and -0.7 / +0.1 / -0.2).
  int freezing_actor_steps = 0;
  float ptx_coef = 0;               // gamma of InstructGPT's PPO-ptx (ptx.h; arXiv 2203.02155, Eq. 2): each policy update
                                    // also descends gamma x the SFT objective on one batch of the checkpoint's own SFT
                                    // data (the same batch in every PPO epoch of a step). 0 = off (ppo_recipe: 1)
  float temperature = 1.0f;         // sampling temperature; log-probs are taken at the same one (trl 0.7)
  int response_length = 96;         // max new tokens per completion (trl response_length 53); as grpo's
                                    // max_completion_length: a level-3 answer is ~71 tokens; at 64, 108 of 200
                                    // held-out level-3 answers were well formed instead of 177
  RewardRules reward_rules;         // accuracy 1, format 1 (R1), check_steps on (reward.h)
  // The prompts' levels, as grpo's: where the demo's SFT model has room to improve (level 3, never in its SFT data).
  // Level 1 alone (the SFT models are at 98.5-98.7% there, so its batches are nearly all right and their whitened
  // advantages are noise) cost -2.1 / -4.1 / +0.1 and -1.8 / -4.3 / -0.2 points on the first two checkpoints of
  // ppo_recipe()'s comment (at 1e-5)
  // (notebooks/EXPERIMENTS.md, "PPO at its defaults").
  std::vector<int> levels = {2, 3};  // generated problem levels the prompts come from
  int n_prompts = 4000;             // generated training problems to draw prompts from (split equally over levels)
  uint64_t seed = 1234;             // prompt order and sampling
  std::string out_dir = "runs/ppo";
  int ckpt_every = 0;               // steps between latest.* checkpoints (0 = only the final one)
  int eval_problems = 100;          // held-out problems per level, greedy exact match before and after (0 = none)
  std::vector<int> eval_levels = {1, 2, 3};  // held-out levels evaluated (test split), as `tinyds dpo`: the levels
                                    // PPO does not train on show whether it damaged them; empty = the training levels
  bool use_reward_model = false;    // score with a (frozen, untrained) reward model instead of the rule reward
  std::string reward_model;         // stem of a trained reward model (`tinyds rm`: <out>/final), frozen, scoring
                                    // instead of the rule reward; empty = rule reward (or use_reward_model)
  bool save = true;                 // write checkpoints (off for `tinyds memory`)
  bool quiet = false;               // no progress lines
};

// `tinyds ppo`'s defaults: these options at lr 1e-5 with InstructGPT's SFT term (ptx_coef 1, as grpo_recipe()).
PPOTrainerOptions ppo_recipe();

// One rollout batch with everything the PPO epochs need. Buffers are Category::rollout, under the role whose
// output they hold (lp_ref: reference; values_old and returns: critic; the rest: policy).
struct PPOExperience {
  int step = 0;                    // the 0-based step it was sampled for (a divergence error names step + 1)
  PolicyBatch batch;               // inputs, targets, mask, old_logprobs (B, T)
  Buffer<int> ctargets;            // (B, T) targets where mask is 1, else -1 (prompt positions carry no loss)
  Buffer<float> ref_logprobs;      // (B, T) lp_ref
  Buffer<float> values;            // (B, T) values_old (critic at rollout time)
  Buffer<float> rewards;           // (B, T) KL-penalised per-token rewards + score
  Buffer<float> advantages;        // (B, T) whitened GAE advantages
  Buffer<float> returns;           // (B, T) GAE returns (value targets)
  std::vector<double> scores;      // (B) rule (or reward-model) score of each completion
  std::optional<Batch> ptx;        // the step's SFT batch for PPO-ptx (ptx.h), when ptx_coef > 0: built once, used
                                   // by every PPO epoch of the step
  double reward_mean = 0, reward_std = 0, accuracy = 0, format_rate = 0, eos_rate = 0;
  double kl = 0;                   // mean over sequences of sum_t (lp_old - lp_ref)   (trl objective/kl)
  double kl_per_token = 0;         // masked mean of lp_old - lp_ref
  double completion_length = 0;    // mean completion tokens (with <eos>)
  double rollout_seconds = 0;
  long tokens() const { return static_cast<long>(batch.B) * batch.T; }
};

// What one epoch's update saw (before its optimizer step) and did.
struct PPOUpdateStats {
  PPOStats loss;                   // pg_loss, vf_loss, clip fractions, approxkl, ratio_mean
  double entropy = 0;              // masked mean per-token entropy of the current policy
  double value_mean = 0;           // masked mean of the current critic's values
  double policy_grad_norm = 0, critic_grad_norm = 0;  // before clipping
  double ptx_loss = 0;             // the SFT objective on the step's ptx batch (0 when ptx_coef is 0 or the actor is frozen)
};

struct PPOStepRecord {
  int step = 0;
  double reward_mean = 0, accuracy = 0, format_rate = 0, kl = 0, vf_loss = 0, pg_clipfrac = 0, entropy = 0;
  double completion_length = 0, tokens_per_s = 0;
};

struct PPOResult {
  std::vector<PPOStepRecord> steps;
  std::vector<LevelAccuracy> before, after;  // held-out greedy exact match per evaluated level (empty: none)
  double seconds = 0;
  std::string final_ckpt;
};

class PPOTrainer {
 public:
  // From a checkpoint (init != nullptr: its config, tokenizer and weights) or a fresh init of cfg (seed
  // cfg.train.seed). The reference and the critic's trunk start as copies of the policy.
  PPOTrainer(const Config& cfg, const Tokenizer& tok, const PPOTrainerOptions& opt, const LoadedCheckpoint* init);

  // Rollout of step `step`'s prompts, scoring, reference and critic forward, rewards, GAE.
  PPOExperience make_experience(int step);
  // The same with chosen prompts: indices into problems() (B of them; repeats allowed), sampled with step's seed.
  PPOExperience make_experience(int step, const std::vector<int>& prompt_idx);
  // Step 3 from e.scores (B), e.batch, e.ref_logprobs and e.values: per-token rewards, GAE, whitened advantages,
  // returns, reward mean/std and KL. make_experience calls it; a caller may change e.scores and call it again.
  void score_experience(PPOExperience& e) const;
  // One PPO epoch on exp: one optimizer step on the policy and on the critic. A diverged epoch (a forward that fails,
  // a non-finite loss, a non-finite gradient or updated parameter of the policy, or of the critic: "critic/<name>",
  // "value_head.weight", "value_head.bias") throws the error of train/finite_check.h naming step exp.step + 1.
  PPOUpdateStats update(const PPOExperience& exp);
  // The whole run: steps x (make_experience + num_ppo_epochs updates), logging, checkpoints, evaluation.
  PPOResult run();

  Transformer<float>& policy() { return policy_; }
  Transformer<float>& reference() { return reference_; }
  Critic<float>& critic() { return critic_; }
  const PPOTrainerOptions& options() const { return opt_; }
  // The prompts step `step` uses: indices into problems(), batch_size positions of the pool's seeded order
  // (rl_common.h: without replacement, as GRPO's).
  std::vector<int> prompt_indices(int step) const { return pool_.step_indices(step, opt_.batch_size); }
  const std::vector<Problem>& problems() const { return pool_.problems(); }

 private:
  void save(const std::string& stem, int step);  // <stem>.safetensors (policy), <stem>.critic.safetensors, ...
  // Held-out greedy exact match per level of eval_levels (metrics lines as GRPO's).
  std::vector<LevelAccuracy> evaluate(int step, std::ostream& metrics);

  Config cfg_;
  Tokenizer tok_;
  PPOTrainerOptions opt_;
  Transformer<float> policy_, reference_;
  Critic<float> critic_;
  std::unique_ptr<Critic<float>> reward_model_;
  AdamW policy_opt_;
  CriticAdamW critic_opt_;
  PromptPool pool_;
  std::unique_ptr<BatchSource> ptx_;  // PPO-ptx's SFT batches (ptx.h), when ptx_coef > 0
  // Update scratch (Role::policy / Role::critic activations), grown on demand.
  Buffer<float> lp_, dlp_, entropy_, dlogits_, dvalues_;
};

// The sampling seed of step `step`'s rollout (row b then draws from rollout_rng(seed, b, t), model/rollout.h).
uint64_t ppo_sampling_seed(uint64_t seed, int step);

// Copies params and router biases of `from` into `to` (same model config; error naming both otherwise).
void copy_weights(const Transformer<float>& from, Transformer<float>& to);

}  // namespace tinyds
