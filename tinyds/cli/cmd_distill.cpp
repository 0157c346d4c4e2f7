// tinyds/cli/cmd_distill.cpp — `tinyds distill`: distil a frozen teacher checkpoint into a student (a fresh preset
// model or --init) on generated problems (posttrain/distill_trainer.h).
#include <algorithm>
#include <cstdio>

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/cli/config_options.h"
#include "tinyds/core/error.h"
#include "tinyds/posttrain/distill_trainer.h"

namespace tinyds {

int cmd_distill(int argc, char** argv) {
  DistillTrainOptions o;
  o.student = distill_student_preset(scan_preset(argc, argv, "nano"));
  Args a("tinyds distill",
         "Knowledge distillation (Hinton et al. 2015; DESIGN 6): a student learns a frozen teacher's softened\n"
         "next-token distributions on the answers of generated problems, mixed with the hard-label loss:\n"
         "alpha T^2 KL(p_teacher^T || p_student^T) + (1 - alpha) CE. The teacher is a larger tinyds checkpoint with\n"
         "the same tokenizer. The student is --init, or a fresh model of --preset and the model options (these are\n"
         "refused together with --init); a fresh student's --max-seq-len 0 means the teacher's.");
  std::string divergence = distill_divergence_name(o.distill.divergence);
  a.add_required("--teacher", o.teacher_ckpt, "checkpoint of the frozen teacher (e.g. a `small` model from `tinyds sft`)");
  a.add("--init", o.init_ckpt, "the student's starting checkpoint (default: a fresh model of --preset)");
  ConfigOptions co;
  co.add_model_to(a, o.student);
  a.add("--out", o.out_dir, "output folder for metrics.jsonl and checkpoints");
  a.add("--steps", o.steps, "optimizer steps");
  a.add("--batch-size", o.batch_size, "problems per step B");
  a.add("--alpha", o.distill.alpha, "weight of the KL term (1 - alpha weights the hard-label cross-entropy)");
  a.add("--temperature", o.distill.temperature, "softmax temperature T of both models in the KL term (scaled by T^2)");
  a.add("--divergence", divergence, "forward: KL(teacher || student) | reverse: KL(student || teacher)");
  a.add("--levels", o.levels, "difficulty levels of the training problems and held-out evaluation");
  a.add("--n-train", o.n_train, "generated training problems per level (train split)");
  a.add("--lr", o.lr, "peak AdamW learning rate (trl: learning_rate); linear warmup, then cosine to --min-lr");
  a.add("--min-lr", o.min_lr, "cosine schedule floor");
  a.add("--warmup", o.warmup_steps, "linear learning-rate warmup steps");
  a.add("--beta1", o.beta1, "AdamW beta1");
  a.add("--beta2", o.beta2, "AdamW beta2");
  a.add("--weight-decay", o.weight_decay, "AdamW decoupled weight decay (matrices only)");
  a.add("--max-grad-norm", o.max_grad_norm, "global grad-norm clip (trl 1.0; 0 = off)");
  a.add("--eval-every", o.eval_every, "steps between held-out evaluations (0 = only before and after)");
  a.add("--eval-problems", o.eval_problems, "held-out problems per level (greedy exact match; 0 = no evaluation)");
  a.add("--max-new-tokens", o.max_new_tokens, "longest completion in the held-out evaluation");
  a.add("--ckpt-every", o.ckpt_every, "steps between latest.safetensors checkpoints (0 = only final.safetensors)");
  a.add("--log-every", o.log_every, "steps between progress lines");
  a.add("--seed", o.seed, "seed of the data order and of a fresh student's initialisation");
  a.add_flag("--quiet", o.quiet, "no progress lines");
  if (!a.parse(argc, argv)) return 0;
  if (!o.init_ckpt.empty())
    for (const std::string& name : co.model_option_names)
      if (a.given(name))
        throw_error(name, " cannot be combined with --init: the student's model is the checkpoint's (", o.init_ckpt, ")");
  if (o.init_ckpt.empty()) {
    const int context = o.student.model.max_seq_len;
    // Any valid value, so that finish() can validate the rest: at least the preset's train.seq_len (small: 224).
    o.student.model.max_seq_len = std::max(64, o.student.train.seq_len);
    co.finish(o.student);
    o.student.model.max_seq_len = context;
  }
  o.distill.divergence = parse_distill_divergence(divergence);

  const DistillResult r = run_distill(o);
  std::printf("\n%-7s %10s %10s %10s\n", "level", "teacher", "before", "after");
  for (std::size_t i = 0; i < r.after.size() && i < r.before.size() && i < r.teacher.size(); i++)
    std::printf("%-7d %9.1f%% %9.1f%% %9.1f%%\n", r.after[i].level, 100 * r.teacher[i].accuracy,
                100 * r.before[i].accuracy, 100 * r.after[i].accuracy);
  if (!r.steps.empty()) {
    const DistillStepStats &f = r.steps.front(), &l = r.steps.back();
    double tps = 0;
    for (const DistillStepStats& s : r.steps) tps += s.tokens_per_s / r.steps.size();
    std::printf("tinyds distill: %d steps in %.1f s (%.2fM -> %.2fM parameters); loss %.4f -> %.4f, kl %.4f -> %.4f, "
                "ce %.4f -> %.4f, %.0f tokens/s\n",
                l.step, r.seconds, r.teacher_params / 1e6, r.student_params / 1e6, f.distill.loss, l.distill.loss,
                f.distill.kl, l.distill.kl, f.distill.ce, l.distill.ce, tps);
  }
  return 0;
}

}  // namespace tinyds
