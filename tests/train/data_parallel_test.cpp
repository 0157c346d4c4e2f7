// tests/train/data_parallel_test.cpp — data-parallel replicas (train/data_parallel.h) against one model on the
// whole batch.
//
// The nano DeepSeek-style model (MLA + MoE with bias balancing + MTP) in double precision, a batch of 5 rows
// split over 2 and 3 replicas (uneven shares: 2+3 and 1+2+2 rows), masked targets in every row and one row with
// none at all. Everything the trainer reads must match the single model: the objective and its parts, every
// parameter's gradient, the expert loads, MaxVio, the router biases after the bias update, and a second step
// after the weights changed (so the replicas must have been synced).
//
// Tolerance 1e-12 of scale: the two computations differ only in float rounding (GEMMs over 2-3 rows instead of 5
// block differently; the replicas' gradients are summed in another order), ~1e-16 relative per operation in
// double. A replica that normalised by its own target count would be off by a factor ~2 on its rows; a
// forgotten replica, row or sync by O(1).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tinyds/core/rng.h"
#include "tinyds/model/config.h"
#include "tinyds/model/transformer.h"
#include "tinyds/train/data_parallel.h"

using namespace tinyds;

namespace {

ModelConfig nano_deepseek() {
  Config cfg = Config::preset("nano");
  REQUIRE(cfg.model.attention == AttentionKind::mla);
  REQUIRE(cfg.model.n_routed_experts > 0);
  REQUIRE(cfg.model.mtp_depth > 0);
  REQUIRE(parse_balance(cfg.model.balance).bias);
  return cfg.model;
}

struct Batch5 {
  int B = 5, T = 12;
  std::vector<int> tokens, targets;
};

Batch5 make_batch(const ModelConfig& mc, uint64_t seed) {
  Batch5 b;
  Rng rng(seed);
  b.tokens.resize(b.B * b.T);
  b.targets.resize(b.B * b.T);
  for (int i = 0; i < b.B * b.T; i++) {
    b.tokens[i] = static_cast<int>(rng.randint(0, mc.vocab_size - 1));
    const int row = i / b.T, t = i % b.T;
    const bool masked = row == 3 || t < row || t % 5 == 4;  // row 3: no targets; the others: different counts
    b.targets[i] = masked ? -1 : static_cast<int>(rng.randint(0, mc.vocab_size - 1));
  }
  return b;
}

double max_abs_diff(const double* a, const double* b, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; i++) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

double max_abs(const double* a, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; i++) m = std::max(m, std::abs(a[i]));
  return m;
}

}  // namespace

TEST_CASE("train/data_parallel: data parallel: replicas' summed gradient, losses, loads and bias update equal one model's on the whole batch") {
  const ModelConfig mc = nano_deepseek();
  const Batch5 b = make_batch(mc, 42);
  for (int R : {2, 3}) {
    CAPTURE(R);
    Transformer<double> single(mc), primary(mc);
    single.init_weights(7);
    primary.init_weights(7);
    // Router biases away from 0 so that the bias update and its sync are visible.
    Rng rng(3);
    for (std::size_t i = 0; i < single.moe_bias_size(); i++) single.moe_bias()[i] = primary.moe_bias()[i] = 0.1 * rng.normal();
    DataParallel<double> dp(primary, R);
    REQUIRE(dp.replicas() == R);
    const std::size_t n = single.num_params();

    for (int step = 0; step < 2; step++) {
      CAPTURE(step);
      single.zero_grad();
      const double obj1 = single.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
      single.backward();
      const double objR = dp.forward_backward(b.tokens.data(), b.targets.data(), b.B, b.T);
      CHECK(std::abs(objR - obj1) < 1e-12 * std::abs(obj1));
      CHECK(std::abs(dp.main_loss() - single.main_loss()) < 1e-12 * single.main_loss());
      CHECK(std::abs(dp.mtp_loss() - single.mtp_loss()) < 1e-12 * single.mtp_loss());
      CHECK(dp.mtp_loss() > 0);
      const double scale = max_abs(single.grads(), n);
      REQUIRE(scale > 0);
      CHECK(max_abs_diff(primary.grads(), single.grads(), n) < 1e-12 * scale);
      CHECK(dp.moe_load() == single.moe_load());
      const std::vector<double> v1 = single.moe_maxvio(), vR = dp.moe_maxvio();
      REQUIRE(v1.size() == vR.size());
      for (std::size_t i = 0; i < v1.size(); i++) CHECK(vR[i] == doctest::Approx(v1[i]).epsilon(1e-12));

      single.update_moe_bias();
      dp.update_moe_bias();
      CHECK(max_abs_diff(primary.moe_bias(), single.moe_bias(), single.moe_bias_size()) == 0.0);
      // An optimizer-like change of the weights, then sync: the next step must still match.
      for (std::size_t i = 0; i < n; i++) {
        single.params()[i] -= 0.05 * single.grads()[i] / scale;
        primary.params()[i] -= 0.05 * primary.grads()[i] / scale;
      }
      dp.sync();
    }
    // The primary alone again (no leftover loss normalisation from the data-parallel step).
    single.zero_grad();
    primary.zero_grad();
    const double a = single.forward(b.tokens.data(), b.targets.data(), 2, b.T);
    const double c = primary.forward(b.tokens.data(), b.targets.data(), 2, b.T);
    CHECK(std::abs(a - c) < 1e-12 * std::abs(a));
  }
}

TEST_CASE("train/data_parallel: data parallel: without sync the replicas keep stale weights (the check above can fail)") {
  const ModelConfig mc = nano_deepseek();
  const Batch5 b = make_batch(mc, 43);
  Transformer<double> single(mc), primary(mc);
  single.init_weights(9);
  primary.init_weights(9);
  DataParallel<double> dp(primary, 2);
  for (std::size_t i = 0; i < single.num_params(); i++) {
    single.params()[i] *= 1.5;
    primary.params()[i] *= 1.5;  // no dp.sync(): replica 1 still has the initial weights
  }
  single.zero_grad();
  single.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
  single.backward();
  dp.forward_backward(b.tokens.data(), b.targets.data(), b.B, b.T);
  const std::size_t n = single.num_params();
  CHECK(max_abs_diff(primary.grads(), single.grads(), n) > 1e-3 * max_abs(single.grads(), n));
}

TEST_CASE("train/data_parallel: data parallel: how many replicas") {
  Config cfg = Config::preset("nano");
  CHECK(data_parallel_replicas(3, 8, cfg.model) == 3);
  CHECK(data_parallel_replicas(16, 8, cfg.model) == 8);  // never more than the batch's rows
  CHECK(data_parallel_replicas(1, 8, cfg.model) == 1);
  CHECK(data_parallel_replicas(0, 8, cfg.model) >= 1);   // one per OpenMP thread
  cfg.model.balance = "bias+seqaux";                     // its loss is averaged inside one forward
  CHECK(data_parallel_replicas(4, 8, cfg.model) == 1);
  cfg.model.balance = "aux";
  CHECK(data_parallel_replicas(4, 8, cfg.model) == 1);
  CHECK_THROWS_WITH_AS(data_parallel_replicas(-1, 8, cfg.model), doctest::Contains("replicas = -1"), Error);
}
