// tinyds/cli/cmd_ppo.cpp — `tinyds ppo`: PPO with GAE, a critic and a frozen reference (posttrain/ppo_trainer.h).
#include <cstdio>

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/posttrain/ppo_trainer.h"
#include "tinyds/posttrain/trainer_common.h"
#include "tinyds/train/checkpoint.h"

namespace tinyds {

int cmd_ppo(int argc, char** argv) {
  Args a("tinyds ppo",
         "PPO (trl PPOTrainer / DESIGN 6) on GSM8K-style prompts from a checkpoint: one sampled completion per prompt,\n"
         "rule reward (accuracy + format) at the last token with a per-token k1 KL penalty against the frozen initial\n"
         "policy, GAE, clipped policy and value losses; the critic is a copy of the policy with a scalar value head.\n"
         "Option names follow trl's PPOConfig.");
  PPOTrainerOptions o = ppo_recipe();
  std::string init;
  a.add_required("--init", init, "checkpoint of the initial policy (e.g. runs/sft/final.safetensors)");
  a.add("--out", o.out_dir, "output folder: metrics.jsonl, final.safetensors (policy), final.critic.safetensors, final.value_head.safetensors");
  a.add("--steps", o.steps, "PPO iterations (each: one rollout batch, then --ppo-epochs updates)");
  a.add("--batch-size", o.batch_size, "prompts per step, one completion each (= sampled sequences)");
  a.add("--ppo-epochs", o.ppo.num_ppo_epochs, "passes over each rollout batch (trl num_ppo_epochs, default 4 there; 2 here for CPU speed)");
  a.add("--learning-rate", o.lr, "policy AdamW learning rate (trl learning_rate 3e-6 for large models)");
  a.add("--warmup", o.warmup_steps, "linear warmup of both learning rates over this many optimizer steps");
  a.add("--critic-learning-rate", o.critic_learning_rate, "critic AdamW learning rate (< 0: same as --learning-rate)");
  a.add("--freezing-actor-steps", o.freezing_actor_steps, "the first steps train only the critic (OpenRLHF freezing_actor_steps): the policy's first advantages then come from a critic that has seen the prompts");
  a.add("--ptx-coef", o.ptx_coef, "weight gamma of the SFT loss on the checkpoint's own SFT data added to each policy "
                                  "update (InstructGPT's PPO-ptx; 0 = off)");
  a.add("--weight-decay", o.weight_decay, "AdamW weight decay of both models (trl 0)");
  a.add("--max-grad-norm", o.max_grad_norm, "clip each model's gradient to this global L2 norm (0 = off)");
  a.add("--kl-coef", o.ppo.kl_coef, "per-token k1 KL penalty in the reward: r_t = -kl_coef (lp_old - lp_ref)");
  a.add("--gamma", o.ppo.gamma, "GAE discount");
  a.add("--lam", o.ppo.lam, "GAE lambda");
  a.add("--cliprange", o.ppo.cliprange, "policy ratio clip epsilon");
  a.add("--cliprange-value", o.ppo.cliprange_value, "value clip around the rollout's values");
  a.add("--vf-coef", o.ppo.vf_coef, "weight of the value loss");
  a.add("--temperature", o.temperature, "sampling temperature, also used for the log-probs (trl 0.7)");
  a.add("--response-length", o.response_length, "max new tokens per completion (trl response_length)");
  a.add("--reward-model", o.reward_model, "score with this trained reward model instead of the rule (the stem `tinyds rm` wrote, e.g. runs/rm/final)");
  a.add("--accuracy-weight", o.reward_rules.accuracy, "weight of the accuracy reward");
  a.add("--format-weight", o.reward_rules.format, "weight of the format reward");
  a.add("--check-steps", o.reward_rules.check_steps, "accuracy only when every <<a+b=c>> calculator annotation holds");
  a.add("--levels", o.levels, "difficulty levels of the generated prompts");
  a.add("--n-prompts", o.n_prompts, "generated training problems the prompts are drawn from");
  a.add("--seed", o.seed, "seed of prompt order and sampling");
  a.add("--ckpt-every", o.ckpt_every, "steps between latest.* checkpoints (0 = only the final one)");
  a.add("--eval-problems", o.eval_problems, "held-out problems per level for greedy exact match before and after (0 = skip)");
  a.add("--eval-levels", o.eval_levels, "held-out levels evaluated before and after (empty: the training levels)");
  a.add_flag("--quiet", o.quiet, "no progress lines");
  if (!a.parse(argc, argv)) return 0;
  const LoadedCheckpoint ck = load_checkpoint(init);
  PPOTrainer trainer(ck.config, ck.tokenizer, o, &ck);
  const PPOResult r = trainer.run();
  print_level_changes(r.before, r.after);
  const PPOStepRecord& last = r.steps.back();
  std::printf("tinyds ppo: %d steps in %.1f s, last step reward %.3f, accuracy %.1f%%, format %.1f%%\n", last.step,
              r.seconds, last.reward_mean, 100 * last.accuracy, 100 * last.format_rate);
  return 0;
}

}  // namespace tinyds
