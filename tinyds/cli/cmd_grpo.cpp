// tinyds/cli/cmd_grpo.cpp — `tinyds grpo`: R1-Zero-style RL (GRPO, or REINFORCE with a group-mean baseline) from
// a checkpoint, with rule-based accuracy + format rewards (posttrain/grpo_trainer.h).
//
// Option names follow trl's GRPOConfig where the concept exists (beta, epsilon, epsilon_high, num_generations,
// num_iterations, loss_type, scale_rewards, max_completion_length, temperature, top_k, top_p, max_grad_norm),
// with '-' for '_'.
#include <algorithm>
#include <cstdio>

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/core/error.h"
#include "tinyds/device/device.h"
#include "tinyds/posttrain/grpo_trainer.h"
#include "tinyds/posttrain/trainer_common.h"

namespace tinyds {

namespace {

// trl's scale_rewards was a bool and is now "group" | "batch" | "none"; tinyds has the per-group std only.
bool parse_scale_rewards(const std::string& s) {
  if (s == "true" || s == "group") return true;
  if (s == "false" || s == "none") return false;
  throw_error("--scale-rewards '", s, "' is not one of: true (= group), false (= none)");
}

}  // namespace

int cmd_grpo(int argc, char** argv) {
  GRPOTrainOptions o = grpo_recipe();  // the demo's stage 2 (posttrain/grpo_trainer.h)
  Args a("tinyds grpo",
         "R1-Zero-style reinforcement learning on GSM8K-style arithmetic: sample num_generations completions per\n"
         "prompt, reward accuracy + format (rule-based), and optimise the GRPO objective (DeepSeekMath Eq. 3) with a\n"
         "k3 KL penalty to a frozen reference copy of --init. Option names follow trl's GRPOConfig.");
  std::string device = "cpu";
  std::string algo = rl_algo_name(o.algo), loss_type = grpo_loss_type_name(o.grpo.loss_type), scale = "true";
  double epsilon_high = -1;
  a.add_required("--init", o.init_ckpt, "checkpoint of the policy to train (and of the frozen reference), e.g. from `tinyds sft`");
  a.add("--out", o.out_dir, "output folder for metrics.jsonl and checkpoints");
  a.add("--device", device, "cpu | cuda: where the models, the rollouts and the update run (cuda: the CUDA kernels; "
                            "in the default build the CPU emulation of CUDA, slow)");
  a.add("--algo", algo, "grpo | reinforce (vanilla policy gradient, advantage R - group mean, no clip or KL)");
  a.add("--steps", o.steps, "RL steps (each: one rollout batch, num_iterations optimizer steps)");
  a.add("--prompts-per-step", o.prompts_per_step, "distinct prompts per step P (completions per step = P * G)");
  a.add("--num-generations", o.grpo.num_generations, "G completions per prompt (trl 8; R1-Zero 16); >= 2");
  a.add("--num-iterations", o.num_iterations, "mu: optimizer steps per rollout batch (trl 1)");
  a.add("--sample-rounds", o.sample_rounds,
        "dynamic sampling (DAPO): if fewer than P of a step's groups are partly right, partly wrong, draw R - 1 more "
        "batches of P prompts at once, and train on P such groups (topped up with others if too few); 1 = off");
  a.add("--beta", o.grpo.beta, "weight of the k3 KL penalty to the reference (DeepSeekMath 0.04; trl 0; R1-Zero 0.001)");
  a.add("--epsilon", o.grpo.epsilon, "clip: ratio >= 1 - epsilon (and <= 1 + epsilon unless --epsilon-high)");
  a.add("--epsilon-high", epsilon_high, "upper clip 1 + epsilon_high (DAPO 0.28); -1 = epsilon");
  a.add("--loss-type", loss_type, "aggregation: grpo (per-sequence means, the paper) | bnpo | dapo (token mean; trl) | dr_grpo");
  a.add("--scale-rewards", scale, "divide advantages by the group std: true | false (Dr. GRPO)");
  a.add("--max-completion-length", o.max_completion_length, "longest completion in tokens, <eos> included");
  a.add("--temperature", o.temperature, "sampling temperature (log-probs are taken at the same temperature)");
  a.add("--top-k", o.top_k, "sample from the top_k tokens only (0 = off)");
  a.add("--top-p", o.top_p, "nucleus sampling threshold (1 = off)");
  a.add("--accuracy-weight", o.reward_rules.accuracy, "reward weight of accuracy (the answer after #### is right)");
  a.add("--format-weight", o.reward_rules.format, "reward weight of format (reasoning lines, one '#### N', <eos>)");
  a.add("--check-steps", o.reward_rules.check_steps, "accuracy only when every <<a+b=c>> calculator annotation holds "
                                                     "(a lucky answer after a wrong line earns nothing)");
  a.add("--ptx-coef", o.ptx_coef, "weight gamma of the SFT loss on the checkpoint's own SFT data added to each "
                                    "step (InstructGPT's PPO-ptx; 0 = off)");
  a.add("--credit-steps", o.credit_steps, "no gradient on the results of right calculator lines in a completion below "
                                          "its group's mean (nor of wrong lines in one above it)");
  a.add("--levels", o.levels, "difficulty levels of the training prompts and held-out evaluation");
  a.add("--eval-levels", o.eval_levels, "held-out levels to evaluate before and after (empty = --levels)");
  a.add("--n-train", o.n_train, "generated training problems per level (train split)");
  a.add("--prompt-distractors", o.prompt_distractors, "share of the training prompts given an irrelevant "
        "sentence before the question asked (data/distractors.h); held-out problems are never changed");
  a.add("--lr", o.lr, "AdamW learning rate (trl: learning_rate), constant after the warmup");
  a.add("--warmup", o.warmup_steps, "linear learning-rate warmup over this many optimizer steps");
  a.add("--beta1", o.beta1, "AdamW beta1");
  a.add("--beta2", o.beta2, "AdamW beta2");
  a.add("--adam-epsilon", o.adam_eps, "AdamW epsilon (trl: adam_epsilon): updates of weights whose gradient RMS is below it shrink");
  a.add("--weight-decay", o.weight_decay, "AdamW decoupled weight decay (trl 0)");
  a.add("--max-grad-norm", o.max_grad_norm, "global grad-norm clip (trl 1.0; 0 = off)");
  a.add("--eval-every", o.eval_every, "steps between held-out evaluations (0 = only at the start and the end)");
  a.add("--eval-problems", o.eval_problems, "held-out problems per level (greedy exact match; 0 = no evaluation)");
  a.add("--ckpt-every", o.ckpt_every, "steps between latest.safetensors checkpoints (0 = only final.safetensors)");
  a.add("--log-every", o.log_every, "steps between progress lines");
  a.add("--rollout-batch", o.rollout_batch, "sequences decoded together in a rollout (does not change results)");
  a.add("--ref-batch", o.ref_batch, "sequences per forward of the frozen reference (saves its activations; 0 = all)");
  a.add("--seed", o.seed, "seed of the prompt order and the sampling");
  a.add_flag("--quiet", o.quiet, "no progress lines");
  if (!a.parse(argc, argv)) return 0;
  o.device = parse_device(device, "--device");
  o.algo = parse_rl_algo(algo);
  o.grpo.loss_type = parse_grpo_loss_type(loss_type);
  o.grpo.scale_rewards = parse_scale_rewards(scale);
  if (epsilon_high >= 0) o.grpo.epsilon_high = epsilon_high;
  else if (epsilon_high != -1) throw_error("--epsilon-high = ", epsilon_high, ": must be >= 0, or -1 for epsilon");
  if (o.algo == RLAlgo::reinforce) o.label = "reinforce";
  if (o.device == Device::cuda && o.algo != RLAlgo::grpo)
    throw_error("--algo ", algo, " with --device cuda: REINFORCE's loss has no kernel; use --algo grpo or --device cpu");
  require_device(o.device);
  std::printf("device: %s\n", describe_device(o.device).c_str());

  GRPOResult r = run_grpo(o);
  // A table for the reader: held-out accuracy per level before and after, and the reward curve in fifths.
  print_level_changes(r.before, r.after);
  const int n = static_cast<int>(r.steps.size());
  if (n > 0) {
    std::printf("\n%-13s %12s %10s %10s %10s\n", "steps", "reward mean", "accuracy", "format", "kl");
    const int parts = std::min(5, n);
    for (int p = 0; p < parts; p++) {
      const int lo = p * n / parts, hi = (p + 1) * n / parts;
      double rw = 0, acc = 0, fmt = 0, kl = 0;
      for (int i = lo; i < hi; i++) { rw += r.steps[i].reward_mean; acc += r.steps[i].accuracy; fmt += r.steps[i].format; kl += r.steps[i].kl; }
      const double c = hi - lo;
      std::printf("%5d-%-7d %12.3f %9.1f%% %9.1f%% %10.4f\n", lo + 1, hi, rw / c, 100 * acc / c, 100 * fmt / c, kl / c);
    }
  }
  return 0;
}

}  // namespace tinyds
