// tinyds/posttrain/reward_model_trainer.h — `tinyds rm`: a Bradley-Terry reward model (DESIGN 6; trl RewardTrainer)
// on preference pairs "the right solution vs the --init model's own wrong answer" (own_answers.h) or "vs the same
// solution with one result made wrong" (preference.h).
//
// Shapes: P pairs per step (batch_size); the pair batch has B = 2P rows, rows [0, P) chosen and [P, 2P) rejected,
// T columns, C d_model, N = B*T.
//
// The reward model is critic.h's Critic under Role::reward: a whole transformer trunk initialised from --init and
// a scalar head (w (C), b (1), zero at the start, so every reward starts at 0 and the loss at log 2), read at each
// row's last completion position (the state that has read the whole answer and predicts <eos>; PPOTrainer reads a
// reward model at the same place):
//   V      = Critic.forward(rows)                      (B, T)   x_L @ w + b at every position
//   r[b]   = V[b, last[b]]                             (B)      last = preference.h's last_target_positions
//   L      = mean_p -log sigmoid(r[p] - r[P + p])               reward_model.h
//   dV     = dr at (b, last[b]), 0 elsewhere -> Critic.backward (head + trunk via backward_from_hidden)
// then a grad-norm clip of trunk + head, AdamW on both (CriticAdamW, moments under Role::reward), and the trunk's
// router biases (DESIGN 4.3).
// Logged per step (progress line + <out_dir>/metrics.jsonl): loss, accuracy (pairs with r_w > r_l), margin (mean
// r_w - r_l), reward_chosen / reward_rejected (means), grad_norm, lr, tokens/s, memory. Held-out pair accuracy
// (test-split problems, their own corruptions) before, every eval_every steps and at the end, also by kind: the
// "####" number changed (detected by comparing it with the last line) or a step's result changed (detected only by
// redoing that step's arithmetic).
// With --rejected own the rejected rows are the --init model's own greedy answers where they are wrong
// (own_answers.h), decoded by a frozen copy of it (Role::reference): the pairs a reward model meets when it scores
// that model's samples. Training problems it answers right are passed over (up to own_rounds rounds of P per step);
// the held-out pairs are the held-out problems it gets wrong.
// Saved as two files (the layout PPO uses for its critic): <stem>.safetensors, the trunk as an ordinary checkpoint
// (config, tokenizer, weights, the trunk's AdamW state), and <stem>.reward_head.safetensors, the head as tensors
// "reward_head.weight" (C) and "reward_head.bias" (1) (critic.h's save_scalar_head). load_reward_model reads both.
// `tinyds ppo` has no option to load one yet: its --use-reward-model path builds an untrained one for the memory
// comparison only.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tinyds/data/tokenizer.h"
#include "tinyds/posttrain/critic.h"
#include "tinyds/posttrain/own_answers.h"
#include "tinyds/posttrain/preference.h"
#include "tinyds/posttrain/losses/reward_model.h"

namespace tinyds {

struct RMTrainOptions {
  std::string init_ckpt;          // trunk weights (e.g. from `tinyds sft`); required
  std::string out_dir = "runs/rm";
  // The defaults' pairs: the --init model's own wrong answers on levels 2-3, the completions a reward model scores
  // in PPO. On them the head reaches 96.6-97.2% held-out pair accuracy in 100 steps; on corrupted copies of level-1
  // solutions 75% (88-93% at 1000-6000 steps). notebooks/EXPERIMENTS.md, "DPO and the reward model on the model's
  // own mistakes".
  PairSource rejected = PairSource::own;              // corrupted copies, or the --init model's own wrong answers
  PairCorruption corruption = PairCorruption::mixed;  // how the rejected solution is made wrong (corrupted)
  int own_rounds = 4;             // own: most rounds of P problems decoded per step to find P wrong answers
  int max_new_tokens = 96;        // own: longest greedy answer decoded
  int steps = 100;                // optimizer steps
  int batch_size = 8;             // P pairs per step (trl per_device_train_batch_size 8); 2P rows per forward
  std::vector<int> levels = {2, 3};  // generated problems of these levels (train split; held-out pairs: test split)
  int n_train = 4000;             // generated training problems per level
  // AdamW, constant lr after a linear warmup
  float lr = 1e-4f;               // trl / transformers default 5e-5; the zero head needs a few steps to grow
  int warmup_steps = 0;
  float beta1 = 0.9f, beta2 = 0.999f, adam_eps = 1e-8f;  // torch / trl defaults
  float weight_decay = 0.0f;      // trl 0
  float max_grad_norm = 1.0f;     // global grad-norm clip of trunk + head (trl 1.0); 0 = off
  int eval_every = 0;             // steps between held-out pair evaluations (0 = before and after only)
  int eval_pairs = 100;           // held-out pairs per level (0 = no evaluation)
  int ckpt_every = 0;             // steps between <out_dir>/latest.* (0 = only <out_dir>/final.*)
  int log_every = 10;             // steps between progress lines
  uint64_t seed = 1234;           // pair order and corruptions
  bool quiet = false;
  std::string label = "rm";
};

struct RMStepStats {
  int step = 0;
  RewardModelStats rm;          // loss, accuracy, mean_margin (before the step's update)
  double reward_chosen = 0, reward_rejected = 0;  // mean r_w, mean r_l
  double grad_norm = 0;         // trunk + head, before clipping
  double lr = 0;
  double seconds = 0;
  long tokens = 0;              // B*T positions forwarded
  double tokens_per_s = 0;
};

// One level's held-out pairs at one evaluation; n_final of them have only the "####" number changed
// (preference.h's only_final_line_differs), the other n - n_final a step's result.
struct RMEval {
  int step, level, n;
  double accuracy, margin;
  int n_final;
  double final_accuracy, step_accuracy;  // over each kind (0 where a kind has no pair)
};

struct RMResult {
  std::vector<RMStepStats> steps;
  std::vector<RMEval> evals;    // held-out pair accuracy per level at every evaluation
  double heldout_before = -1, heldout_after = -1;  // over all levels (-1: not evaluated)
  std::string final_stem;       // <out_dir>/final: .safetensors and .reward_head.safetensors
  double seconds = 0;
  std::size_t peak_bytes = 0;
};

// Checks the options; errors name the option (by its command-line name) and the value.
void validate(const RMTrainOptions& opt);

// The whole run: trunk from --init, zero head, train, evaluate, save.
RMResult run_reward_model(const RMTrainOptions& opt);

// Rewards r (2P) of the pair rows (preference.h's layout) at each row's last completion position.
std::vector<double> score_pairs(Critic<float>& rm, const std::vector<Problem>& rows, const Tokenizer& tok);

// One optimizer step on the pair rows. optimizer_step: steps already taken (for the warmup). A diverged step (a
// forward that fails, a non-finite loss or gradient of trunk or reward_head, a non-finite parameter after the
// update) throws the error of train/finite_check.h naming step optimizer_step + 1.
RMStepStats reward_model_update(Critic<float>& rm, CriticAdamW& adam, const std::vector<Problem>& rows,
                                const Tokenizer& tok, const RMTrainOptions& opt, int optimizer_step);

// Writes <stem>.safetensors (trunk checkpoint) and <stem>.reward_head.safetensors.
void save_reward_model(const std::string& stem, const Config& cfg, const Tokenizer& tok, Critic<float>& rm,
                       const AdamW* trunk_opt, int step);
// Reads them back into a frozen Critic<float> under Role::reward; the config and tokenizer come with the trunk.
struct LoadedRewardModel {
  Config config;
  Tokenizer tokenizer;
  std::unique_ptr<Critic<float>> model;
};
LoadedRewardModel load_reward_model(const std::string& stem);

}  // namespace tinyds
