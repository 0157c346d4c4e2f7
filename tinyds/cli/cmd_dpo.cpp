// tinyds/cli/cmd_dpo.cpp — `tinyds dpo`: DPO / IPO from a checkpoint on "right solution vs the model's own wrong
// answer" or "right vs corrupted solution" pairs (posttrain/dpo_trainer.h).
//
// Option names follow trl's DPOConfig where the concept exists (beta, loss_type, learning_rate -> --lr,
// max_grad_norm, warmup_steps -> --warmup), with '-' for '_'.
#include <cstdio>

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/posttrain/dpo_trainer.h"
#include "tinyds/posttrain/trainer_common.h"

namespace tinyds {

int cmd_dpo(int argc, char** argv) {
  DPOTrainOptions o;
  Args a("tinyds dpo",
         "Direct Preference Optimization (Rafailov et al. 2023; DESIGN 6) from a checkpoint, with a frozen reference\n"
         "copy of --init. Pairs: a generated problem's right solution (chosen) vs, with --rejected corrupted, the same\n"
         "solution with one result made wrong (--corruption), or with --rejected own, the policy's own greedy answer\n"
         "where the rule reward calls it wrong (SPIN's pairs, arXiv 2401.01335; problems it gets right are passed over).\n"
         "Option names follow trl's DPOConfig.");
  std::string loss_type = dpo_loss_type_name(o.dpo.loss_type), corruption = pair_corruption_name(o.corruption);
  std::string rejected = pair_source_name(o.rejected);
  a.add_required("--init", o.init_ckpt, "checkpoint of the policy to train (and of the frozen reference), e.g. from `tinyds sft`");
  a.add("--out", o.out_dir, "output folder for metrics.jsonl and checkpoints");
  a.add("--steps", o.steps, "optimizer steps");
  a.add("--batch-size", o.batch_size, "preference pairs per step (2 x this many sequences per forward)");
  a.add("--beta", o.dpo.beta, "DPO beta: the implicit reward is beta (log pi - log pi_ref) (trl 0.1); IPO's tau");
  a.add("--loss-type", loss_type, "sigmoid (DPO, trl default) | ipo (always per-token means)");
  a.add_flag("--length-normalize", o.dpo.length_normalize,
             "sigmoid: per-token mean log-probs instead of sums (DeepSeekMath A.1.4); trl sums");
  a.add("--rejected", rejected, "the rejected solution: corrupted (--corruption) | own (the policy's greedy answer where wrong)");
  a.add("--own-rounds", o.own_rounds, "own: most rounds of --batch-size problems decoded per step to find that many wrong answers");
  a.add("--rpo-alpha", o.rpo_alpha, "weight of the chosen rows' NLL added to the DPO loss (RPO, arXiv 2404.19733; trl rpo_alpha; 0 = off)");
  a.add("--credit-steps", o.credit_steps, "leave the rejected answer's right calculator results after the pair's first difference out of the loss");
  a.add("--corruption", corruption, "how the rejected solution is wrong: final (the #### number) | intermediate (one step's result) | mixed");
  a.add("--levels", o.levels, "difficulty levels of the training pairs");
  a.add("--eval-levels", o.eval_levels, "held-out levels evaluated before and after");
  a.add("--n-train", o.n_train, "generated training problems per level (train split)");
  // Why 5e-6 with a 10-step warmup: AdamW moves every weight by about lr per step (a fresh optimizer's first step
  // by the full lr), so lr is a step size in weight space. DPO's gradient points the same way step after step (the
  // pairs differ in one number), so 100 steps add up: at 5e-5 the SFT model fell from 75% to 37% with KL spikes of
  // 192 and 317; half of `tinyds grpo`'s 1e-5 keeps the drift of 100 steps within the SFT schedule's last steps.
  a.add("--lr", o.lr, "AdamW learning rate (trl: learning_rate), constant after the warmup");
  a.add("--warmup", o.warmup_steps, "linear learning-rate warmup over this many steps");
  a.add("--beta1", o.beta1, "AdamW beta1");
  a.add("--beta2", o.beta2, "AdamW beta2");
  a.add("--weight-decay", o.weight_decay, "AdamW decoupled weight decay (trl 0)");
  a.add("--max-grad-norm", o.max_grad_norm, "global grad-norm clip (trl 1.0; 0 = off)");
  a.add("--eval-every", o.eval_every, "steps between held-out evaluations (0 = only before and after)");
  a.add("--eval-problems", o.eval_problems, "held-out problems per level (greedy exact match; 0 = no evaluation)");
  a.add("--max-new-tokens", o.max_new_tokens, "longest completion in the held-out evaluation");
  a.add("--ckpt-every", o.ckpt_every, "steps between latest.safetensors checkpoints (0 = only final.safetensors)");
  a.add("--log-every", o.log_every, "steps between progress lines");
  a.add("--seed", o.seed, "seed of the pair order and the corruptions");
  a.add_flag("--quiet", o.quiet, "no progress lines");
  if (!a.parse(argc, argv)) return 0;
  o.dpo.loss_type = parse_dpo_loss_type(loss_type);
  o.corruption = parse_pair_corruption(corruption);
  o.rejected = parse_pair_source(rejected);

  const DPOResult r = run_dpo(o);
  print_level_changes(r.before, r.after);
  if (!r.steps.empty()) {
    const DPOStepStats &f = r.steps.front(), &l = r.steps.back();
    std::printf("tinyds dpo: %d steps in %.1f s; loss %.4f -> %.4f, reward accuracy %.1f%% -> %.1f%%, margin %.3f -> "
                "%.3f, kl %.4f\n",
                l.step, r.seconds, f.dpo.loss, l.dpo.loss, 100 * f.dpo.rewards_accuracy, 100 * l.dpo.rewards_accuracy,
                f.dpo.rewards_margin, l.dpo.rewards_margin, l.kl);
  }
  return 0;
}

}  // namespace tinyds
