// tests/train/trainer_test.cpp — the training loop: it learns, it resumes exactly, its checkpoints round-trip, and
// a mismatched checkpoint is refused with a clear error.
#include <doctest/doctest.h>

#include <algorithm>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tests/util/fs_util.h"
#include "tinyds/core/error.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/schedule.h"
#include "tinyds/train/trainer.h"

using namespace tinyds;
using tinyds::test::temp_dir;
namespace fs = std::filesystem;

namespace {

Config nano_run(int steps) {
  Config c = Config::preset("nano");  // DeepSeek-style: MLA + MoE (router biases in the checkpoint) + MTP
  c.train.steps = steps;
  c.train.eval_problems = 0;  // no evaluation: these tests are about the optimisation itself
  c.train.seq_len = 64;
  c.train.batch_size = 4;
  c.train.lr = 1e-2f;
  return c;
}

}  // namespace

TEST_CASE("train/trainer: warmup then cosine to the floor") {
  // Independent values: warmup is linear, the cosine midpoint is the mean of lr and min_lr, the end is min_lr.
  CHECK(lr_at(0, 1.0, 0.1, 10, 110) == doctest::Approx(0.1));
  CHECK(lr_at(9, 1.0, 0.1, 10, 110) == doctest::Approx(1.0));
  CHECK(lr_at(10, 1.0, 0.1, 10, 110) == doctest::Approx(1.0));
  CHECK(lr_at(60, 1.0, 0.1, 10, 110) == doctest::Approx(0.55));
  CHECK(lr_at(110, 1.0, 0.1, 10, 110) == doctest::Approx(0.1));
  CHECK(lr_at(500, 1.0, 0.1, 10, 110) == doctest::Approx(0.1));
}

TEST_CASE("train/trainer: level weights split the generated problems in proportion") {
  DataConfig d;
  d.levels = {1, 2};
  d.n_train = 1200;
  CHECK(problems_per_level(d) == std::vector<int>{600, 600});  // no weights: equal shares (as before weights)
  d.level_weights = {2, 1};
  CHECK(problems_per_level(d) == std::vector<int>{800, 400});
  d.levels = {1, 2, 3};
  d.level_weights = {1, 1, 5};
  d.n_train = 10;  // 10/7, 10/7, 50/7 rounded down
  CHECK(problems_per_level(d) == std::vector<int>{1, 1, 7});
  d.level_weights = {1, 1, 100};  // 10/102 rounds to 0: every level keeps at least one problem
  CHECK(problems_per_level(d) == std::vector<int>{1, 1, 9});
}

TEST_CASE("train/trainer: nano model's loss falls on level-1 problems") {
  std::string dir = temp_dir("learn");
  TrainOptions opt;
  opt.out_dir = dir;
  opt.quiet = true;
  opt.mask_prompt = false;
  TrainResult r = run_training(nano_run(40), opt);
  REQUIRE(r.losses.size() == 40);
  double first = (r.losses[0] + r.losses[1] + r.losses[2]) / 3, last = (r.losses[37] + r.losses[38] + r.losses[39]) / 3;
  MESSAGE("loss " << first << " -> " << last);
  CHECK(first > 4.0);          // ~ln(128) = 4.85 at init
  CHECK(last < first - 1.0);   // a character model learns the letter frequencies within 40 steps
  CHECK(fs::exists(dir + "/final.safetensors"));
  CHECK(fs::exists(dir + "/metrics.jsonl"));
  fs::remove_all(dir);
}

TEST_CASE("train/trainer: an interrupted and resumed run gives the same losses as an uninterrupted one") {
  std::string a = temp_dir("resume_a"), b = temp_dir("resume_b");
  Config cfg = nano_run(10);
  int replicas = 0;  // one per OpenMP thread
  SUBCASE("plain") {}
  SUBCASE("3 data-parallel replicas") { replicas = 3; }
  SUBCASE("with padding drills") {  // whole level-1 problems (T 160), so rows have padding for drills
    cfg.model.max_seq_len = 160;
    cfg.train.seq_len = 160;
    cfg.data.pad_drills = true;
  }
  TrainOptions full;
  full.out_dir = a; full.quiet = true; full.replicas = replicas;
  TrainResult straight = run_training(cfg, full);
  if (replicas == 3) CHECK(straight.replicas == std::min(3, cfg.train.batch_size));

  TrainOptions first;
  first.out_dir = b; first.quiet = true; first.stop_after = 4; first.replicas = replicas;
  TrainResult part1 = run_training(cfg, first);
  REQUIRE(part1.losses.size() == 4);
  TrainOptions second;
  second.out_dir = b; second.quiet = true; second.resume = b + "/latest.safetensors"; second.replicas = replicas;
  TrainResult part2 = run_training(cfg, second);
  REQUIRE(part2.losses.size() == 6);
  for (int i = 0; i < 10; i++) {
    double resumed = i < 4 ? part1.losses[i] : part2.losses[i - 4];
    CHECK_MESSAGE(resumed == straight.losses[i], "step " << i + 1);  // bitwise: same batches, same state
  }
  // And the final weights are identical.
  LoadedCheckpoint x = load_checkpoint(a + "/final.safetensors"), y = load_checkpoint(b + "/final.safetensors");
  CHECK(x.params == y.params);
  CHECK(x.adam_m == y.adam_m);
  CHECK(x.state.step == 10);
  if (cfg.data.pad_drills) {  // the drills were really there: every step's metrics line counts them
    std::ifstream f(a + "/metrics.jsonl");
    int steps_with_drills = 0;
    for (std::string line; std::getline(f, line);) {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (j.contains("pad_drills") && j["pad_drills"].get<int>() > 0) steps_with_drills++;
    }
    CHECK(steps_with_drills >= 5);
  }
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST_CASE("train/trainer: checkpoint round trip and a mismatched checkpoint is a clear error") {
  std::string dir = temp_dir("ckpt");
  Config c = nano_run(0);
  Transformer<float> m(c.model);
  m.init_weights(9);
  save_checkpoint(dir + "/a.safetensors", c, Tokenizer(), m, nullptr, TrainState{3, 3});
  LoadedCheckpoint ck = load_checkpoint(dir + "/a.safetensors");
  CHECK(ck.state.step == 3);
  CHECK(!ck.has_optimizer);
  CHECK(std::equal(ck.params.begin(), ck.params.end(), m.params()));
  CHECK(model_config_to_json(ck.config.model) == model_config_to_json(c.model));

  Config other = c;
  other.model.d_model = 64;
  other.model.head_dim = 16;
  Transformer<float> wrong(other.model);
  try {
    load_params_into(ck, wrong);
    FAIL("a mismatched checkpoint was accepted");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK(msg.find(dir + "/a.safetensors") != std::string::npos);
    CHECK(msg.find("does not match") != std::string::npos);
  }
  // Resuming from a checkpoint without optimizer state is refused, naming the file.
  TrainOptions opt;
  opt.out_dir = dir; opt.quiet = true; opt.resume = dir + "/a.safetensors";
  CHECK_THROWS_WITH_AS(run_training(nano_run(5), opt), doctest::Contains("no optimizer state"), Error);
  // A missing file is an error naming it.
  CHECK_THROWS_AS(load_checkpoint(dir + "/missing.safetensors"), Error);
  fs::remove_all(dir);
}
