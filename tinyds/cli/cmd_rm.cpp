// tinyds/cli/cmd_rm.cpp — `tinyds rm`: a Bradley-Terry reward model from a checkpoint on "right solution vs the
// model's own wrong answer" or "right vs corrupted solution" pairs (posttrain/reward_model_trainer.h).
//
// Option names follow trl's RewardConfig where the concept exists (learning_rate -> --lr, max_grad_norm,
// warmup_steps -> --warmup), with '-' for '_'.
#include <cstdio>

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/posttrain/reward_model_trainer.h"

namespace tinyds {

int cmd_rm(int argc, char** argv) {
  RMTrainOptions o;
  Args a("tinyds rm",
         "Reward model (Bradley-Terry, DESIGN 6; trl RewardTrainer): the trunk of --init plus a scalar head on the last\n"
         "completion token, trained so that a generated problem's right solution scores above the --init model's own\n"
         "wrong answer (--rejected own) or the same solution with one result made wrong (--rejected corrupted).\n"
         "Writes <out>/final.safetensors (the trunk, an ordinary checkpoint) and\n"
         "<out>/final.reward_head.safetensors (reward_head.weight (C), reward_head.bias (1)).");
  std::string corruption = pair_corruption_name(o.corruption), rejected = pair_source_name(o.rejected);
  a.add_required("--init", o.init_ckpt, "checkpoint the reward model's trunk starts from, e.g. from `tinyds sft`");
  a.add("--out", o.out_dir, "output folder for metrics.jsonl and the reward model");
  a.add("--steps", o.steps, "optimizer steps");
  a.add("--batch-size", o.batch_size, "preference pairs per step (2 x this many sequences per forward)");
  a.add("--rejected", rejected, "the rejected solution: corrupted (--corruption) | own (the --init model's greedy answer where wrong)");
  a.add("--own-rounds", o.own_rounds, "own: most rounds of --batch-size problems decoded per step to find that many wrong answers");
  a.add("--max-new-tokens", o.max_new_tokens, "own: longest greedy answer decoded");
  a.add("--corruption", corruption, "how the rejected solution is wrong: final (the #### number) | intermediate (one step's result) | mixed");
  a.add("--levels", o.levels, "difficulty levels of the training and held-out pairs");
  a.add("--n-train", o.n_train, "generated training problems per level (train split)");
  a.add("--lr", o.lr, "AdamW learning rate of trunk and head (trl: learning_rate), constant after the warmup");
  a.add("--warmup", o.warmup_steps, "linear learning-rate warmup over this many steps");
  a.add("--beta1", o.beta1, "AdamW beta1");
  a.add("--beta2", o.beta2, "AdamW beta2");
  a.add("--weight-decay", o.weight_decay, "AdamW decoupled weight decay (trl 0)");
  a.add("--max-grad-norm", o.max_grad_norm, "global grad-norm clip of trunk + head (trl 1.0; 0 = off)");
  a.add("--eval-every", o.eval_every, "steps between held-out pair evaluations (0 = only before and after)");
  a.add("--eval-pairs", o.eval_pairs, "held-out pairs per level (test split; 0 = no evaluation)");
  a.add("--ckpt-every", o.ckpt_every, "steps between latest.* reward model files (0 = only final.*)");
  a.add("--log-every", o.log_every, "steps between progress lines");
  a.add("--seed", o.seed, "seed of the pair order and the corruptions");
  a.add_flag("--quiet", o.quiet, "no progress lines");
  if (!a.parse(argc, argv)) return 0;
  o.corruption = parse_pair_corruption(corruption);
  o.rejected = parse_pair_source(rejected);

  const RMResult r = run_reward_model(o);
  if (!r.steps.empty()) {
    const RMStepStats &f = r.steps.front(), &l = r.steps.back();
    std::printf("tinyds rm: %d steps in %.1f s; loss %.4f -> %.4f, pair accuracy %.1f%% -> %.1f%%, margin %.3f -> %.3f",
                l.step, r.seconds, f.rm.loss, l.rm.loss, 100 * f.rm.accuracy, 100 * l.rm.accuracy, f.rm.mean_margin,
                l.rm.mean_margin);
    if (r.heldout_after >= 0)
      std::printf("; held-out pair accuracy %.1f%% -> %.1f%%", 100 * r.heldout_before, 100 * r.heldout_after);
    std::printf("\n");
  }
  return 0;
}

}  // namespace tinyds
