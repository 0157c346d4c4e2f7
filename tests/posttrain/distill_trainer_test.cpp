// tests/posttrain/distill_trainer_test.cpp — the distillation trainer (posttrain/distill_trainer.h): a fresh nano
// student learns a wider, briefly trained teacher (loss, KL and CE all fall), the run logs every field and
// checkpoints, a teacher with another vocabulary is refused, and bad options are errors naming them.
//
// Shapes: teacher nano with C 64 (F 128), student nano (C 32); both V 128, max_seq_len 160.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/util/fs_util.h"
#include "tests/util/error_util.h"
#include "tests/util/nano_checkpoint.h"
#include "tinyds/posttrain/distill_trainer.h"
#include "tinyds/train/checkpoint.h"

using namespace tinyds;
using tinyds::test::temp_dir;
using tinyds_test::error_of;
using tinyds_test::has;
namespace fs = std::filesystem;

TEST_CASE("posttrain/distill_trainer: a fresh student learns the teacher, and the run logs, evaluates and checkpoints") {
  const std::string dir = temp_dir("distill_e2e");
  // The teacher: nano twice as wide, after a short SFT run (so that its distributions are far from uniform).
  Config tc = tinyds::test::short_sft_config(160, 12, 8);
  tc.model.d_model = 64;
  tc.model.ffn_hidden = 128;
  const std::string teacher = tinyds::test::sft_checkpoint(tc, dir + "/teacher");
  REQUIRE(fs::exists(teacher));

  DistillTrainOptions o;
  o.teacher_ckpt = teacher;
  o.out_dir = dir + "/distill";
  o.steps = 12;
  o.batch_size = 8;
  o.n_train = 64;
  o.levels = {1};
  o.lr = 3e-3f;
  o.min_lr = 3e-4f;
  o.warmup_steps = 2;
  o.eval_problems = 3;
  o.max_new_tokens = 12;
  o.eval_every = 6;
  o.ckpt_every = 6;
  o.quiet = true;
  const DistillResult r = run_distill(o);
  REQUIRE(r.steps.size() == 12);
  CHECK(r.teacher_params > r.student_params);
  REQUIRE(r.teacher.size() == 1);
  REQUIRE(r.before.size() == 1);
  REQUIRE(r.after.size() == 1);
  const DistillStepStats &first = r.steps.front(), &last = r.steps.back();
  MESSAGE("loss " << first.distill.loss << " -> " << last.distill.loss << ", kl " << first.distill.kl << " -> "
                  << last.distill.kl << ", ce " << first.distill.ce << " -> " << last.distill.ce);
  // A fresh student starts near uniform (CE ~ log 128 = 4.85). Measured: loss 2.60 -> 2.04, kl 0.082 -> 0.022,
  // ce 4.86 -> 4.00; the bounds leave room for rounding and thread-count differences but not for a wrong gradient.
  CHECK(last.distill.loss < 0.9 * first.distill.loss);
  CHECK(last.distill.kl < 0.5 * first.distill.kl);
  CHECK(last.distill.ce < first.distill.ce - 0.3);
  for (const DistillStepStats& s : r.steps) {
    // loss = alpha T^2 KL + (1 - alpha) CE with alpha 0.5, T 2 (the defaults)
    CHECK(s.distill.loss == doctest::Approx(0.5 * 4 * s.distill.kl + 0.5 * s.distill.ce).epsilon(1e-6));
    CHECK(s.tokens > 0);
  }

  const char* fields[] = {"step", "loss", "kl", "ce", "grad_norm", "lr", "step_s", "tokens", "tokens_per_s",
                          "peak_bytes", "elapsed_s", "maxvio"};
  std::ifstream f(o.out_dir + "/metrics.jsonl");
  std::string line;
  int step_lines = 0, eval_lines = 0, teacher_lines = 0;
  while (std::getline(f, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("eval_accuracy")) {
      eval_lines++;
      teacher_lines += j.at("model") == "teacher";
      continue;
    }
    step_lines++;
    for (const char* k : fields) CHECK_MESSAGE(j.contains(k), "metrics line ", step_lines, " lacks ", k);
  }
  CHECK(step_lines == 12);
  CHECK(eval_lines == 4);  // the teacher once, the student at steps 0, 6 and 12
  CHECK(teacher_lines == 1);

  // The student's checkpoint: its own (nano) config, with the teacher's context length, and 12 optimizer steps.
  CHECK(fs::exists(o.out_dir + "/latest.safetensors"));
  const LoadedCheckpoint s = load_checkpoint(r.final_ckpt);
  CHECK(s.config.model.d_model == 32);
  CHECK(s.config.model.max_seq_len == 160);
  CHECK(s.state.step == 12);

  // --init: the student continues from that checkpoint.
  DistillTrainOptions i = o;
  i.init_ckpt = r.final_ckpt;
  i.steps = 1;
  i.eval_problems = 0;
  i.out_dir = dir + "/distill2";
  CHECK(run_distill(i).student_params == r.student_params);
  fs::remove_all(dir);
}

TEST_CASE("posttrain/distill_trainer: a teacher with another vocabulary and bad options are refused") {
  Config t = Config::preset("nano"), s = Config::preset("nano");
  s.model.vocab_size = t.model.vocab_size + 8;
  const std::string e = error_of([&] { check_distill_pair(t, Tokenizer(), s, Tokenizer()); });
  CHECK(has(e, "vocab_size = " + std::to_string(t.model.vocab_size)));
  CHECK(has(e, "same vocabulary"));
  CHECK(error_of([&] { check_distill_pair(t, Tokenizer(), t, Tokenizer()); }) == "<no error>");

  DistillTrainOptions o;
  CHECK(has(error_of([&] { run_distill(o); }), "--teacher"));
  o.teacher_ckpt = "/nonexistent/teacher.safetensors";
  CHECK(has(error_of([&] { run_distill(o); }), "/nonexistent/teacher.safetensors"));
  o.distill.alpha = 1.5;
  CHECK(has(error_of([&] { validate(o); }), "--alpha = 1.5"));
  o.distill.alpha = 0.5;
  o.distill.temperature = 0;
  CHECK(has(error_of([&] { validate(o); }), "--temperature = 0"));
  o.distill.temperature = 2;
  o.min_lr = 1.0f;
  CHECK(has(error_of([&] { validate(o); }), "--min-lr = 1"));
  CHECK(has(error_of([] { parse_distill_divergence("jsd"); }), "--divergence 'jsd'"));
}
