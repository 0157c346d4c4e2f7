// tinyds/posttrain/distill_trainer.h — `tinyds distill`: knowledge distillation (Hinton et al. 2015; DESIGN 6) of a
// larger frozen teacher checkpoint into a student on generated GSM8K-style problems.
//
// Shapes: B problems per step (batch_size), T columns (the longest row of the step, capped at the smaller
// max_seq_len), V vocab (teacher and student must agree), N = B*T.
//
// Two models: the student (Role::policy, trained: a fresh preset model, or --init) and the teacher
// (Role::teacher, weights only: no gradient, no optimizer). Both must use the same tokenizer and vocab_size.
//
// One step (SFT's batch, soft targets from the teacher):
//   batch    = B training problems as <bos> question '\n' answer <eos>, prompt masked (data/batch.h)
//   teacher  : logits_t = teacher.forward(inputs)                 (N, V)
//   student  : logits_s = student.forward(inputs)                 (N, V)
//   L        = distill_loss(logits_s, logits_t, targets)          distill.h:
//              alpha T^2 KL(p_t^T || p_s^T) + (1 - alpha) CE(y, p_s), mean over answer tokens (reverse KL optional)
//   dlogits -> student.backward_from_logits, grad-norm clip, AdamW (warmup + cosine, as `tinyds sft`),
//   student.update_moe_bias()                                     (DESIGN 4.3)
// Logged per step (progress line + <out_dir>/metrics.jsonl): loss, kl, ce, grad_norm, lr, tokens, tokens/s,
// memory. Held-out greedy exact match per level of the teacher (once) and of the student (before, every eval_every
// steps, after); checkpoints <out_dir>/latest.safetensors every ckpt_every steps and <out_dir>/final.safetensors
// (an ordinary checkpoint of the student).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tinyds/data/batch.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/model/config.h"
#include "tinyds/model/transformer.h"
#include "tinyds/posttrain/losses/distill.h"
#include "tinyds/train/optimizer.h"
#include "tinyds/train/trainer.h"

namespace tinyds {

DistillDivergence parse_distill_divergence(const std::string& s);  // "forward" | "reverse"; error naming the value
const char* distill_divergence_name(DistillDivergence d);

// Config::preset(name) with model.max_seq_len = 0: a fresh student takes the teacher's context length.
Config distill_student_preset(const std::string& name);

struct DistillTrainOptions {
  std::string teacher_ckpt;       // the frozen teacher (a larger tinyds checkpoint); required
  std::string init_ckpt;          // the student's starting weights; empty: a fresh `student` model
  Config student = distill_student_preset("nano");  // the fresh student's model (ignored with init_ckpt);
                                  // model.max_seq_len 0 means "the teacher's"
  std::string out_dir = "runs/distill";
  DistillConfig distill;          // alpha 0.5, temperature 2, forward KL
  int steps = 500;                // optimizer steps
  int batch_size = 16;            // B problems per step
  std::vector<int> levels = {1};  // training problems and held-out evaluation: generated problems of these levels
  int n_train = 20000;            // generated training problems per level
  // AdamW with a linear warmup then a cosine decay to min_lr (as `tinyds sft`)
  float lr = 2e-3f;               // a fresh student is trained from scratch: SFT's learning rates apply
  float min_lr = 2e-4f;
  int warmup_steps = 20;
  float beta1 = 0.9f, beta2 = 0.95f, adam_eps = 1e-8f;
  float weight_decay = 0.1f;      // as `tinyds sft`
  float max_grad_norm = 1.0f;     // global grad-norm clip (trl's name); 0 = off
  int eval_every = 0;             // steps between held-out evaluations (0 = before and after only)
  int eval_problems = 100;        // held-out problems per level (test split; 0 = no evaluation)
  int max_new_tokens = 96;        // longest completion in the held-out evaluation
  int ckpt_every = 0;             // steps between latest.safetensors (0 = only final.safetensors)
  int log_every = 10;             // steps between progress lines
  uint64_t seed = 1234;           // data order and the fresh student's initialisation
  bool quiet = false;
  std::string label = "distill";
};

struct DistillStepStats {
  int step = 0;
  DistillStats distill;         // loss, kl (at T, before alpha and T^2), ce
  double grad_norm = 0;         // before clipping
  double lr = 0;
  double seconds = 0;
  long tokens = 0;              // B*T positions forwarded (by each model)
  double tokens_per_s = 0;
};

struct DistillResult {
  std::vector<DistillStepStats> steps;
  std::vector<LevelAccuracy> teacher, before, after;  // held-out exact match per level
  std::string final_ckpt;
  double seconds = 0;
  std::size_t peak_bytes = 0;
  std::size_t teacher_params = 0, student_params = 0;
};

// Checks the options; errors name the option (by its command-line name) and the value.
void validate(const DistillTrainOptions& opt);

// Refuses a teacher / student pair that cannot be distilled: different vocab_size or tokenizer (the two
// distributions must be over the same tokens). Errors name both checkpoints' values.
void check_distill_pair(const Config& teacher, const Tokenizer& teacher_tok, const Config& student,
                        const Tokenizer& student_tok);

// The whole run.
DistillResult run_distill(const DistillTrainOptions& opt);

// One optimizer step on the batch (prompt-masked targets). optimizer_step: steps already taken (the schedule runs
// over opt.steps). A diverged step (a forward that fails, a non-finite loss or gradient, a non-finite parameter after
// the update) throws the error of train/finite_check.h naming step optimizer_step + 1.
DistillStepStats distill_update(Transformer<float>& student, Transformer<float>& teacher, AdamW& adam,
                                const Batch& batch, const DistillTrainOptions& opt, int optimizer_step);

}  // namespace tinyds
