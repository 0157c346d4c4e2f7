// tests/posttrain/rm_trainer_test.cpp — the reward-model trainer (posttrain/reward_model_trainer.h): training on
// right vs corrupted solutions lowers the Bradley-Terry loss from log 2 and raises the pair accuracy from 0, the run
// logs every field, the saved reward model loads back and ranks the training pairs right, and bad options are
// refused with errors naming them.
//
// Shapes: nano preset (C 32, 2 layers, V 128) with max_seq_len 160.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/util/fs_util.h"
#include "tests/util/error_util.h"
#include "tests/util/nano_checkpoint.h"
#include "tinyds/data/generator.h"
#include "tinyds/posttrain/reward_model_trainer.h"
#include "tinyds/train/checkpoint.h"

using namespace tinyds;
using tinyds::test::temp_dir;
using tinyds_test::error_of;
using tinyds_test::has;
namespace fs = std::filesystem;

namespace {

// A freshly initialised nano checkpoint. init_std 0.2 (as tests/posttrain/grpo_trainer_test.cpp) so that the final hidden
// states the head reads are O(1), as in a trained model: at the default 0.02 they are ~0.02 per component, and a
// head that AdamW moves by ~lr per step would need hundreds of steps to produce a visible margin.
std::string write_nano(const std::string& path) {
  Config c = tinyds::test::nano_config(160);
  c.model.init_std = 0.2f;
  return tinyds::test::write_fresh_checkpoint(path, c);
}

}  // namespace

TEST_CASE("posttrain/rm_trainer: Bradley-Terry training separates right from corrupted solutions") {
  const std::string dir = temp_dir("rm_e2e");
  RMTrainOptions o;
  o.init_ckpt = write_nano(dir + "/init.safetensors");
  o.out_dir = dir + "/rm";
  o.steps = 16;
  o.batch_size = 8;
  o.n_train = 8;  // the same 8 problems every step (their corruptions change): the training pairs can be learned
  o.levels = {1};
  o.rejected = PairSource::corrupted;
  o.lr = 5e-3f;
  o.eval_pairs = 8;
  o.eval_every = 8;
  o.ckpt_every = 8;
  o.quiet = true;
  const RMResult r = run_reward_model(o);
  REQUIRE(r.steps.size() == 16);
  // The head starts at zero: every reward is 0, so the loss is exactly log 2 and no pair is ranked right (ties).
  CHECK(r.steps.front().rm.loss == doctest::Approx(std::log(2.0)).epsilon(1e-6));
  CHECK(r.steps.front().rm.accuracy == 0.0);
  CHECK(r.heldout_before == 0.0);
  double late_acc = 0;
  for (int i = 12; i < 16; i++) late_acc += r.steps[i].rm.accuracy / 4;
  MESSAGE("loss " << r.steps.front().rm.loss << " -> " << r.steps.back().rm.loss << ", accuracy (last 4 steps) "
                  << late_acc << ", margin " << r.steps.back().rm.mean_margin << ", held-out "
                  << r.heldout_before << " -> " << r.heldout_after);
  // Measured: loss 0.693 -> 0.11, accuracy 0.97 over the last 4 steps, margin 4.9. The bounds are far from the
  // start (log 2, accuracy 0, margin 0) and leave room below the measurements.
  CHECK(r.steps.back().rm.loss < 0.4);
  CHECK(late_acc > 0.8);
  CHECK(r.steps.back().rm.mean_margin > 1.0);
  CHECK(r.heldout_after >= 0.0);
  REQUIRE(r.evals.size() == 3);  // steps 0, 8 and 16, one level
  CHECK(r.evals[2].n == 8);

  const char* fields[] = {"step", "loss", "accuracy", "margin", "reward_chosen", "reward_rejected", "grad_norm",
                          "lr", "step_s", "tokens", "tokens_per_s", "peak_bytes", "elapsed_s", "maxvio"};
  std::ifstream f(o.out_dir + "/metrics.jsonl");
  std::string line;
  int step_lines = 0, eval_lines = 0;
  while (std::getline(f, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("eval_pair_accuracy")) {
      // The two kinds of corruption partition the pairs: their accuracies weighted by their counts give the whole.
      // Each accuracy is a ratio of pair counts (<= 8 here), so the weighted sum equals correct / n up to a few
      // double roundings (~1e-16); 1e-12 leaves room for them, while a miscount is off by >= 1/8.
      eval_lines++;
      const double n = j.at("eval_n"), nf = j.at("eval_n_final");
      CHECK(nf >= 0);
      CHECK(nf <= n);
      CHECK(j.at("eval_pair_accuracy").get<double>() ==
            doctest::Approx((nf * j.at("eval_final_accuracy").get<double>() +
                             (n - nf) * j.at("eval_step_accuracy").get<double>()) / n).epsilon(1e-12));
      continue;
    }
    step_lines++;
    for (const char* k : fields) CHECK_MESSAGE(j.contains(k), "metrics line ", step_lines, " lacks ", k);
  }
  CHECK(step_lines == 16);
  CHECK(eval_lines == 3);

  // The saved reward model (trunk checkpoint + head file) loads back and ranks pairs of the training problems (with
  // corruptions it has not seen) as the trained run did.
  CHECK(fs::exists(o.out_dir + "/latest.safetensors"));
  CHECK(fs::exists(o.out_dir + "/latest.reward_head.safetensors"));
  REQUIRE(fs::exists(r.final_stem + ".reward_head.safetensors"));
  LoadedRewardModel lm = load_reward_model(r.final_stem);
  const std::vector<Problem> rows =
      preference_rows(generate_problems(1, 8, 1234 + 7919, Split::train), PairCorruption::mixed, 3);
  const std::vector<double> s1 = score_pairs(*lm.model, rows, lm.tokenizer);
  int right = 0;
  for (int p = 0; p < 8; p++) right += s1[p] > s1[8 + p];
  CHECK(right >= 6);  // the loaded model ranks the training problems' pairs as the trained one did (measured 8/8)
  double head_norm = 0;
  for (std::size_t i = 0; i < lm.model->head_size(); i++) head_norm += std::fabs(lm.model->head()[i]);
  CHECK(head_norm > 0);  // the head was saved, not the zero it started from
  fs::remove_all(dir);
}

TEST_CASE("posttrain/rm_trainer: --rejected own trains and evaluates on the --init model's own wrong answers") {
  // A fresh nano model's greedy answers are junk, wrong on every problem: each step finds its 4 pairs in the first
  // round, and every held-out problem makes a held-out pair. Junk differs from a right solution from its first
  // character, never only in the "####" line. The pairs are easy (a solution against junk): the head separates them.
  const std::string dir = temp_dir("rm_own");
  RMTrainOptions o;
  o.init_ckpt = write_nano(dir + "/init.safetensors");
  o.out_dir = dir + "/rm";
  o.rejected = PairSource::own;
  o.steps = 8;
  o.batch_size = 4;
  o.n_train = 8;
  o.levels = {1};
  o.lr = 5e-3f;
  o.eval_pairs = 6;
  o.max_new_tokens = 24;
  o.quiet = true;
  const RMResult r = run_reward_model(o);
  REQUIRE(r.steps.size() == 8);
  for (const RMStepStats& s : r.steps) CHECK(s.tokens > 0);  // every step trained
  REQUIRE(r.evals.size() == 2);  // level 1 before and after
  for (const RMEval& e : r.evals) {
    CHECK(e.level == 1);
    CHECK(e.n == 6);
    CHECK(e.n_final == 0);
  }
  CHECK(r.heldout_before == doctest::Approx(0.0));  // a zero head ties every pair (r_w > r_l is false)
  MESSAGE("held-out pair accuracy on own pairs " << r.heldout_before << " -> " << r.heldout_after);
  // Measured 5/6 after 8 steps; an untrained or mis-wired head stays at 0 (every pair tied) or near chance, so
  // more than half of the 6 pairs is the bound.
  CHECK(r.heldout_after > 0.5);
  fs::remove_all(dir);
}

TEST_CASE("posttrain/rm_trainer: bad options are errors naming the option and the value") {
  RMTrainOptions o;
  CHECK(has(error_of([&] { run_reward_model(o); }), "--init"));
  o.init_ckpt = "/nonexistent/sft.safetensors";
  CHECK(has(error_of([&] { run_reward_model(o); }), "/nonexistent/sft.safetensors"));
  o.batch_size = 0;
  CHECK(has(error_of([&] { validate(o); }), "--batch-size = 0"));
  o.batch_size = 4;
  o.lr = 0;
  CHECK(has(error_of([&] { validate(o); }), "--lr = 0"));
  o.lr = 1e-4f;
  o.eval_pairs = -1;
  CHECK(has(error_of([&] { validate(o); }), "--eval-pairs = -1"));
  o.eval_pairs = 10;
  o.levels = {};
  CHECK(has(error_of([&] { validate(o); }), "--levels"));
  CHECK(has(error_of([] { load_reward_model("/nonexistent/rm"); }), "/nonexistent/rm.safetensors"));
}
