// tinyds/posttrain/distill_trainer.cpp — see distill_trainer.h.
//
// Shapes: B problems, T columns, V vocab, N = B*T.
#include "tinyds/posttrain/distill_trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/core/timer.h"
#include "tinyds/ops/adamw.h"
#include "tinyds/posttrain/trainer_common.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/finite_check.h"
#include "tinyds/train/progress.h"
#include "tinyds/train/schedule.h"

namespace tinyds {

using json = nlohmann::json;

DistillDivergence parse_distill_divergence(const std::string& s) {
  if (s == "forward") return DistillDivergence::forward_kl;
  if (s == "reverse") return DistillDivergence::reverse_kl;
  throw_error("--divergence '", s, "' is not one of: forward (KL(teacher || student)), reverse (KL(student || teacher))");
}

const char* distill_divergence_name(DistillDivergence d) {
  return d == DistillDivergence::reverse_kl ? "reverse" : "forward";
}

Config distill_student_preset(const std::string& name) {
  Config c = Config::preset(name);
  c.model.max_seq_len = 0;
  return c;
}

void validate(const DistillTrainOptions& o) {
  need(!o.teacher_ckpt.empty(), "--teacher", "(none)", "a teacher checkpoint is required (a larger tinyds model)");
  need(o.distill.alpha >= 0 && o.distill.alpha <= 1, "--alpha", o.distill.alpha,
       "must be in [0, 1] (the weight of the KL term; 1 - alpha weights the hard-label CE)");
  need(o.distill.temperature > 0, "--temperature", o.distill.temperature, "must be > 0");
  need(o.steps >= 0, "--steps", o.steps, "must be >= 0");
  need(o.batch_size >= 1, "--batch-size", o.batch_size, "must be at least 1");
  need(!o.levels.empty(), "--levels", "(empty)", "needs at least one level");
  for (int l : o.levels) need(l >= 1 && l <= 4, "--levels", l, "each level must be 1..4");
  need(o.n_train >= 1, "--n-train", o.n_train, "must be at least 1");
  need(o.lr > 0, "--lr", o.lr, "must be > 0");
  need(o.min_lr >= 0 && o.min_lr <= o.lr, "--min-lr", o.min_lr, "must be in [0, --lr]");
  need(o.warmup_steps >= 0, "--warmup", o.warmup_steps, "must be >= 0");
  need(o.weight_decay >= 0, "--weight-decay", o.weight_decay, "must be >= 0");
  need(o.max_grad_norm >= 0, "--max-grad-norm", o.max_grad_norm, "must be >= 0 (0 = off)");
  need(o.eval_every >= 0, "--eval-every", o.eval_every, "must be >= 0");
  need(o.eval_problems >= 0, "--eval-problems", o.eval_problems, "must be >= 0");
  need(o.max_new_tokens >= 1, "--max-new-tokens", o.max_new_tokens, "must be at least 1");
  need(o.ckpt_every >= 0, "--ckpt-every", o.ckpt_every, "must be >= 0");
  need(o.log_every >= 1, "--log-every", o.log_every, "must be at least 1");
}

void check_distill_pair(const Config& teacher, const Tokenizer& teacher_tok, const Config& student,
                        const Tokenizer& student_tok) {
  if (teacher.model.vocab_size != student.model.vocab_size)
    throw_error("the teacher's vocab_size = ", teacher.model.vocab_size, " differs from the student's ",
                student.model.vocab_size, ": distillation compares the two distributions token by token, so both "
                "models need the same vocabulary");
  if (teacher_tok.to_json() != student_tok.to_json())
    throw_error("the teacher's tokenizer differs from the student's (", teacher_tok.vocab_size(), " vs ",
                student_tok.vocab_size(), " tokens): distillation needs the same token ids in both models");
}

DistillStepStats distill_update(Transformer<float>& student, Transformer<float>& teacher, AdamW& adam,
                                const Batch& batch, const DistillTrainOptions& opt, int optimizer_step) {
  const int B = batch.B, T = batch.T, V = student.config().vocab_size;
  const long N = static_cast<long>(B) * T;
  DistillStepStats s;
  s.tokens = N;
  // Teacher logits (N, V): frozen, forward only.
  teacher.forward(batch.inputs.data(), nullptr, B, T);
  student.zero_grad();
  // A diverged step (train/finite_check.h) stops here, before the optimizer touches the weights.
  const int step = optimizer_step + 1;  // 1-based, as in metrics.jsonl
  diverged_if_throws(step, posttrain_hint(), [&] {
    student.forward(batch.inputs.data(), nullptr, B, T);  // logits only: the loss is computed here, not in the model
  });
  s.distill = distill_loss_forward(student.logits(), teacher.logits(), batch.targets.data(), B * T, V, opt.distill);
  Buffer<float> dlogits(static_cast<std::size_t>(N) * V, Role::policy, Category::activations);  // (B, T, V)
  distill_loss_backward(dlogits.data(), 1.0, student.logits(), teacher.logits(), batch.targets.data(), B * T, V,
                        opt.distill);
  student.backward_from_logits(dlogits.data());
  check_step_finite(step, s.distill.loss, student.layout(), student.grads(), posttrain_hint());
  s.grad_norm = global_norm(student.grads(), student.num_params());
  if (opt.max_grad_norm > 0) clip_grad_norm(student.grads(), student.num_params(), s.grad_norm, opt.max_grad_norm);
  s.lr = lr_at(optimizer_step, opt.lr, opt.min_lr, opt.warmup_steps, opt.steps);  // warmup + cosine, as sft
  adam.step(student.params(), student.grads(),
            AdamWSettings{static_cast<float>(s.lr), opt.beta1, opt.beta2, opt.adam_eps, opt.weight_decay});
  check_params_finite(step, student.layout(), student.params(), posttrain_hint());
  student.update_moe_bias();  // DESIGN 4.3
  return s;
}

namespace {

json step_record(const DistillStepStats& s, std::size_t peak_bytes, double elapsed) {
  return json{{"step", s.step}, {"loss", s.distill.loss}, {"kl", s.distill.kl}, {"ce", s.distill.ce},
              {"grad_norm", s.grad_norm}, {"lr", s.lr}, {"step_s", s.seconds}, {"tokens", s.tokens},
              {"tokens_per_s", s.tokens_per_s}, {"peak_bytes", peak_bytes}, {"elapsed_s", elapsed}};
}

}  // namespace

DistillResult run_distill(const DistillTrainOptions& opt) {
  validate(opt);
  Timer total;
  Ledger::global().reset_peaks();
  LoadedCheckpoint tck = load_checkpoint(opt.teacher_ckpt);
  const Config tcfg = tck.config;
  const Tokenizer tok = tck.tokenizer;
  Transformer<float> teacher(tcfg.model, Role::teacher);
  load_params_into(tck, teacher);
  tck = LoadedCheckpoint{};

  // The student: --init, or a fresh model of opt.student (its context defaults to the teacher's).
  Config scfg;
  Tokenizer stok;
  LoadedCheckpoint sck;
  if (!opt.init_ckpt.empty()) {
    sck = load_checkpoint(opt.init_ckpt);
    scfg = sck.config;
    stok = sck.tokenizer;
  } else {
    scfg = opt.student;
    if (scfg.model.max_seq_len == 0) scfg.model.max_seq_len = tcfg.model.max_seq_len;
    // Distillation batches are cut to max_T below, not to train.seq_len; the preset's value (small: 224) only has
    // to pass validate() against the context taken from the teacher.
    scfg.train.seq_len = std::min(scfg.train.seq_len, scfg.model.max_seq_len);
    scfg.train.seed = opt.seed;
    scfg.validate();
  }
  check_distill_pair(tcfg, tok, scfg, stok);
  Transformer<float> student(scfg.model, Role::policy);
  if (!opt.init_ckpt.empty()) load_params_into(sck, student);
  else student.init_weights(opt.seed);
  sck = LoadedCheckpoint{};
  AdamW adam(student.layout(), Role::policy);
  std::ofstream metrics = open_metrics(opt.out_dir);

  const int max_T = std::min(tcfg.model.max_seq_len, scfg.model.max_seq_len);
  const std::vector<Problem> pool = posttrain_pool(opt.levels, opt.n_train, opt.seed, max_T, 0, opt.label, opt.quiet);
  const std::vector<int> order = seeded_permutation(static_cast<int>(pool.size()), opt.seed, 0xd15);
  // The teacher's held-out set (its seed): teacher and student are evaluated on the same problems.
  const std::vector<std::vector<Problem>> heldout = heldout_per_level(tcfg, opt.levels, opt.eval_problems);

  DistillResult result;
  result.teacher_params = teacher.num_params();
  result.student_params = student.num_params();
  if (!opt.quiet) {
    std::printf("[%s] teacher %s (%.2fM parameters) -> student %s (%.2fM parameters): %zu problems (levels %s), B %d, "
                "%d steps, alpha %g, temperature %g, %s KL, lr %g\n",
                opt.label.c_str(), opt.teacher_ckpt.c_str(), teacher.num_params() / 1e6,
                opt.init_ckpt.empty() ? ("fresh " + scfg.name).c_str() : opt.init_ckpt.c_str(),
                student.num_params() / 1e6, pool.size(), json(opt.levels).dump().c_str(), opt.batch_size, opt.steps,
                opt.distill.alpha, opt.distill.temperature, distill_divergence_name(opt.distill.divergence), opt.lr);
    if (teacher.num_params() <= student.num_params())
      std::printf("[%s] note: the teacher is not larger than the student\n", opt.label.c_str());
  }
  auto evaluate = [&](Transformer<float>& model, int step, const char* who) {
    return evaluate_levels(model, tok, heldout, opt.levels, opt.max_new_tokens, step, metrics, opt.label, opt.quiet,
                           who);
  };
  auto save = [&](const std::string& path, int step) {
    save_checkpoint(path, scfg, tok, student, &adam, TrainState{step, adam.t()});
  };
  result.teacher = evaluate(teacher, 0, "teacher");
  result.before = evaluate(student, 0, "student");
  Progress progress(opt.label, opt.steps, 0, opt.quiet, opt.log_every);
  for (int step = 0; step < opt.steps; step++) {
    Timer st;
    const std::vector<int> idx = step_rows(order, step, opt.batch_size);
    const Batch batch = make_batch(pool, idx, tok, batch_columns(pool, idx, max_T), /*mask_prompt=*/true);
    DistillStepStats s = distill_update(student, teacher, adam, batch, opt, step);
    s.step = step + 1;
    s.seconds = st.seconds();
    s.tokens_per_s = s.seconds > 0 ? s.tokens / s.seconds : 0;
    result.steps.push_back(s);

    const std::size_t peak = Ledger::global().peak_total();
    json rec = step_record(s, peak, total.seconds());
    std::string extra = "kl " + format_fixed(s.distill.kl, 4) + " | ce " + format_fixed(s.distill.ce, 3) + " | mem " +
                        format_bytes(peak);
    add_maxvio(rec, extra, student);
    metrics << rec.dump() << "\n";
    metrics.flush();
    progress.step_done(s.step, s.distill.loss, s.lr, s.grad_norm, s.tokens, extra);
    if (opt.eval_every > 0 && s.step % opt.eval_every == 0 && s.step < opt.steps) evaluate(student, s.step, "student");
    if (opt.ckpt_every > 0 && s.step % opt.ckpt_every == 0) save(opt.out_dir + "/latest.safetensors", s.step);
  }
  result.final_ckpt = opt.out_dir + "/final.safetensors";
  save(result.final_ckpt, opt.steps);
  result.after = evaluate(student, opt.steps, "student");
  result.seconds = total.seconds();
  result.peak_bytes = Ledger::global().peak_total();
  if (!opt.quiet)
    std::printf("[%s] done: %d steps in %.1f s; checkpoint %s; ledger peak %s\n", opt.label.c_str(), opt.steps,
                result.seconds, result.final_ckpt.c_str(), format_bytes(result.peak_bytes).c_str());
  return result;
}

}  // namespace tinyds
