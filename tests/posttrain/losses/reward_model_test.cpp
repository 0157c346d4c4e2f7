// tests/posttrain/losses/reward_model_test.cpp — Bradley-Terry reward-model loss (tinyds/posttrain/losses/reward_model.h).
//
// Gradient tolerance: as tests/ops_util.h (kGradRelTol above kGradAbsFloor, absolute below).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tests/util/error_util.h"
#include "tests/util/ops_util.h"
#include "tinyds/posttrain/losses/reward_model.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;

TEST_CASE("posttrain/losses/reward_model: backward matches finite differences") {
  const int P = 7;
  vec rw = randn(P, 1, 2.0), rl = randn(P, 2, 2.0), drw(P), drl(P);
  auto loss = [&] { return reward_model_loss_forward(rw.data(), rl.data(), P).loss; };
  auto backward = [&] { reward_model_loss_backward(drw.data(), drl.data(), 1.0, rw.data(), rl.data(), P); };
  run_gradcheck(loss, backward, {{"dr_w", &rw, &drw, false}, {"dr_l", &rl, &drl, false}});
}

TEST_CASE("posttrain/losses/reward_model: hand values, accuracy, no overflow at large margins") {
  // Pairs: d = 1, d = -2.  loss = (log(1 + e^-1) + log(1 + e^2)) / 2 = (0.31326168751822286 + 2.1269280110429727) / 2
  const double rw[2] = {1.0, 0.5}, rl[2] = {0.0, 2.5};
  const RewardModelStats s = reward_model_loss_forward(rw, rl, 2);
  CHECK(s.loss == doctest::Approx((0.31326168751822286 + 2.1269280110429727) / 2).epsilon(1e-14));
  CHECK(s.accuracy == 0.5);
  CHECK(s.mean_margin == doctest::Approx(-0.5).epsilon(1e-15));
  double dw[2], dl[2];
  reward_model_loss_backward(dw, dl, 1.0, rw, rl, 2);
  // d/dr_w of log(1 + e^-d) / 2 = -sigmoid(-d) / 2:  -1/(1+e) / 2 = -0.13447071068499755
  CHECK(dw[0] == doctest::Approx(-0.13447071068499755).epsilon(1e-14));
  CHECK(dl[0] == -dw[0]);
  const double big_w[2] = {1000.0, -1000.0}, big_l[2] = {0.0, 0.0};
  const RewardModelStats b = reward_model_loss_forward(big_w, big_l, 2);
  CHECK(b.loss == doctest::Approx(500.0).epsilon(1e-14));  // (0 + 1000) / 2, finite
  const std::string e = tinyds_test::error_of([&] { reward_model_loss_forward(rw, rl, 0); });
  CHECK(tinyds_test::has(e, "P = 0"));
}
