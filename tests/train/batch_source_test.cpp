// tests/train/batch_source_test.cpp — the training batches: what a step gets depends only on (seed, step), and a
// step's rows are the data order's.
#include <doctest/doctest.h>

#include <vector>

#include "tinyds/data/batch.h"
#include "tinyds/data/batch_order.h"
#include "tinyds/train/batch_source.h"

using namespace tinyds;

namespace {

Config small_data(bool pad_drills) {
  Config c = Config::preset("nano");
  c.data.levels = {1};
  c.data.n_train = 200;
  c.data.pad_drills = pad_drills;
  c.train.batch_size = 4;
  c.train.seq_len = 64;
  return c;
}

}  // namespace

TEST_CASE("train/batch_source: a step's batch depends only on (seed, step), not on the steps asked before") {
  const Config cfg = small_data(true);
  Tokenizer tok;
  BatchSource in_order(cfg, training_problems(cfg, ""), tok, true);
  BatchSource jumped(cfg, training_problems(cfg, ""), tok, true);
  std::vector<StepBatch> seen;
  for (int s = 0; s < 40; s++) seen.push_back(in_order.batch(s));
  for (int s : {37, 3, 21, 0, 39}) {  // a resumed run starts at an arbitrary step
    const StepBatch b = jumped.batch(s);
    CHECK(b.batch.inputs == seen[s].batch.inputs);
    CHECK(b.batch.targets == seen[s].batch.targets);
    CHECK(b.pad_drills == seen[s].pad_drills);
  }
}

TEST_CASE("train/batch_source: without drills a step's rows are the data order's, cut to the longest") {
  const Config cfg = small_data(false);
  Tokenizer tok;
  const std::vector<Problem> problems = training_problems(cfg, "");
  BatchSource source(cfg, problems, tok, true);
  BatchOrder order(static_cast<int>(problems.size()), cfg.train.seed);  // what BatchSource must follow
  for (int s = 0; s < 60; s++) {  // 50 steps per epoch: crosses into the second epoch
    const std::vector<int> rows = order.rows(s, cfg.train.batch_size);
    const Batch want = make_batch(problems, rows, tok, batch_columns(problems, rows, cfg.train.seq_len), true);
    const StepBatch got = source.batch(s);
    CHECK(got.pad_drills == -1);  // padding drills off
    CHECK(got.batch.T == want.T);
    CHECK(got.batch.inputs == want.inputs);
    CHECK(got.batch.targets == want.targets);
  }
}
