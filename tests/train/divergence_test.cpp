// tests/train/divergence_test.cpp — a diverging run stops at its first non-finite step with a clear error,
// keeping the last good checkpoint and the metrics up to it; an exception inside the data-parallel region
// reaches the caller instead of terminating the process.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/util/error_util.h"
#include "tests/util/fs_util.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/data_parallel.h"
#include "tinyds/train/finite_check.h"
#include "tinyds/train/trainer.h"

using namespace tinyds;
using tinyds::test::temp_dir;
using tinyds_test::error_of;
using tinyds_test::has;

TEST_CASE("train/finite_check: the first tensor holding NaN or Inf is named") {
  const ParamLayout layout(Config::preset("nano").model);
  std::vector<float> x(layout.total(), 1.0f);
  CHECK(first_nonfinite_tensor(layout, x.data()).empty());
  const TensorSpec& late = layout.find("head");
  const TensorSpec& early = layout.find("layers.1.attn_norm");
  x[late.offset + late.numel - 1] = std::numeric_limits<float>::infinity();
  CHECK(first_nonfinite_tensor(layout, x.data()) == "head");
  x[early.offset] = std::numeric_limits<float>::quiet_NaN();
  CHECK(first_nonfinite_tensor(layout, x.data()) == "layers.1.attn_norm");  // layout order: layers before head
}

TEST_CASE("train/trainer: divergence stops at the first non-finite step and keeps the last good checkpoint") {
  // lr 1e6 without clipping: the first updates move every weight by ~1e6 and the loss overflows within a few
  // steps (50 steps is far more than needed). A checkpoint every step: the one on disk must be the last finite one.
  const std::string dir = temp_dir("diverge");
  Config c = Config::preset("nano");
  c.train.seq_len = 64;
  c.train.lr = 1e6f;
  c.train.min_lr = 0;
  c.train.grad_clip = 0;
  c.train.ckpt_every = 1;
  c.train.steps = 50;
  c.train.eval_problems = 0;
  TrainOptions opt;
  opt.out_dir = dir;
  opt.quiet = true;
  opt.replicas = 2;  // the forward runs inside the data-parallel OpenMP region
  const std::string msg = error_of([&] { run_training(c, opt); });
  REQUIRE_MESSAGE(has(msg, "training diverged at step "), msg);
  CHECK_MESSAGE(has(msg, "--lr"), msg);
  CHECK_MESSAGE(has(msg, "--grad-clip"), msg);
  const int bad_step = std::stoi(msg.substr(msg.find("at step ") + 8));
  MESSAGE(msg);
  REQUIRE(bad_step >= 2);  // at least one good step before it, so there is a checkpoint to keep

  // The checkpoint on disk loads (every value finite) and is the step before the divergence.
  const LoadedCheckpoint ck = load_checkpoint(dir + "/latest.safetensors");
  CHECK(ck.state.step == bad_step - 1);
  CHECK(!std::filesystem::exists(dir + "/final.safetensors"));

  // metrics.jsonl: one valid line per good step 1..bad_step-1, nothing for the diverged step.
  std::ifstream f(dir + "/metrics.jsonl");
  std::set<int> steps;
  int lines = 0;
  for (std::string line; std::getline(f, line); lines++) {
    const nlohmann::json j = nlohmann::json::parse(line);  // throws (fails the test) on a torn line
    steps.insert(j.at("step").get<int>());
    CHECK(std::isfinite(j.at("loss").get<double>()));
  }
  CHECK(lines == bad_step - 1);
  CHECK(static_cast<int>(steps.size()) == bad_step - 1);
  if (!steps.empty()) CHECK(*steps.rbegin() == bad_step - 1);
}

TEST_CASE("train/data_parallel: an exception in a replica's forward reaches the caller") {
  // A NaN weight makes the MoE router's finite check throw inside the OpenMP region: before the exception was
  // carried out of the region, this terminated the whole process ("terminate called recursively").
  Config c = Config::preset("nano");
  Transformer<float> model(c.model, Role::policy);
  model.init_weights(1);
  model.params()[model.layout().find("embed").offset] = std::numeric_limits<float>::quiet_NaN();
  DataParallel<float> dp(model, 2);
  REQUIRE(dp.replicas() == 2);
  const int B = 2, T = 8;
  std::vector<int> tokens(B * T, 5), targets(B * T, 6);
  tokens[0] = 0;  // token 0 reads the NaN row of the embedding
  tokens[T] = 0;
  const std::string msg = error_of([&] { dp.forward_backward(tokens.data(), targets.data(), B, T); });
  CHECK_MESSAGE(has(msg, "not finite"), msg);
}
