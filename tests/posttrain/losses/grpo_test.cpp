// tests/posttrain/losses/grpo_test.cpp — GRPO advantages, clipped loss with k3 KL, the four aggregations, and
// REINFORCE with the group-mean baseline (tinyds/posttrain/losses/grpo.h, reinforce.h).
//
// Gradient tolerance: as tests/ops_util.h. Inputs are kept >= 1e-3 from the clip kinks (asserted), so the
// h = 1e-5 central differences never straddle one.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/util/error_util.h"
#include "tests/util/ops_util.h"
#include "tinyds/posttrain/losses/grpo.h"
#include "tinyds/posttrain/losses/reinforce.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;

TEST_CASE("posttrain/losses/grpo: hand values, scale_rewards, degenerate groups") {
  GRPOConfig c;
  c.num_generations = 4;
  // Group 0: (1, 0, 0, 1): mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = sqrt(1/3) -> A = +-0.5 / (sqrt(1/3) + 1e-4)
  // Group 1: (0.1, 0.1, 0.1, 0.1): degenerate -> A = 0 exactly
  // Group 2: (2, 0, 0, 0): mean 0.5, std sqrt((2.25 + 3 * 0.25) / 3) = 1 -> A = (1.5, -0.5, -0.5, -0.5) / 1.0001
  const vec R = {1, 0, 0, 1, 0.1, 0.1, 0.1, 0.1, 2, 0, 0, 0};
  vec A(12);
  GRPOGroupStats s = grpo_advantages(A.data(), R.data(), 12, c);
  const double a0 = 0.5 / (std::sqrt(1.0 / 3.0) + 1e-4);
  CHECK(A[0] == doctest::Approx(a0).epsilon(1e-14));
  CHECK(A[1] == doctest::Approx(-a0).epsilon(1e-14));
  for (int j = 4; j < 8; j++) CHECK(A[j] == 0.0);
  CHECK(A[8] == doctest::Approx(1.5 / 1.0001).epsilon(1e-14));
  CHECK(A[9] == doctest::Approx(-0.5 / 1.0001).epsilon(1e-14));
  CHECK(s.num_groups == 3);
  CHECK(s.degenerate_groups == 1);
  CHECK(s.reward_mean == doctest::Approx((2.0 + 0.4 + 2.0) / 12.0).epsilon(1e-14));
  c.scale_rewards = false;  // Dr. GRPO: R - mean only
  s = grpo_advantages(A.data(), R.data(), 12, c);
  CHECK(A[0] == doctest::Approx(0.5).epsilon(1e-15));
  CHECK(A[8] == doctest::Approx(1.5).epsilon(1e-15));
  CHECK(s.degenerate_groups == 1);
  CHECK(tinyds_test::has(tinyds_test::error_of([&] { grpo_advantages(A.data(), R.data(), 10, c); }),
                         "B = 10 is not a positive multiple of num_generations = 4"));
  // A degenerate group whose mean is not exactly its value: (0.1 + 0.1 + 0.1) / 3 = 0.10000000000000002, so
  // R - mean = -1.4e-17, which divided by std + 1e-4 would leave a spurious A ~ -1.4e-13. It must be exactly 0.
  c.num_generations = 3;
  c.scale_rewards = true;
  const vec R3 = {0.1, 0.1, 0.1};
  vec A3(3, 7.0);
  CHECK(grpo_advantages(A3.data(), R3.data(), 3, c).degenerate_groups == 1);
  for (double a : A3) CHECK(a == 0.0);
  c.num_generations = 1;
  CHECK(tinyds_test::has(tinyds_test::error_of([&] { grpo_advantages(A.data(), R.data(), 12, c); }),
                         "num_generations = 1"));
}

TEST_CASE("posttrain/losses/grpo: aggregation by loss_type, by hand") {
  // B = 2, T = 3, masks (1, 1, 0) and (1, 1, 1); on-policy (lp == lp_old, r = 1) and beta = 0, so every token's
  // loss is -A_i. A = (1, -2): per-token losses (-1, -1, [masked]) and (2, 2, 2).
  //   grpo:    ((-1 - 1) / 2 + (2 + 2 + 2) / 3) / 2 = (-1 + 2) / 2 = 0.5
  //   bnpo:    (-2 + 6) / 5 = 0.8;  dapo the same
  //   dr_grpo: (-2 + 6) / (2 * 5) = 0.4 with max_completion_length 5
  const vec lp = {-1, -2, -3, -1, -1, -1}, mask = {1, 1, 0, 1, 1, 1}, A = {1, -2};
  GRPOConfig c;
  c.beta = 0.0;
  c.max_completion_length = 5;
  const std::pair<GRPOLossType, double> expect[] = {{GRPOLossType::grpo, 0.5}, {GRPOLossType::bnpo, 0.8},
                                                    {GRPOLossType::dapo, 0.8}, {GRPOLossType::dr_grpo, 0.4}};
  for (auto [type, value] : expect) {
    const std::string type_name = grpo_loss_type_name(type);
    CAPTURE(type_name);
    c.loss_type = type;
    CHECK(grpo_loss_forward<double>(lp.data(), lp.data(), nullptr, A.data(), mask.data(), 2, 3, c).loss ==
          doctest::Approx(value).epsilon(1e-14));
  }
  // dr_grpo gradient: -A_i / (B * max_completion_length) on every counted token
  vec d(6);
  c.loss_type = GRPOLossType::dr_grpo;
  grpo_loss_backward<double>(d.data(), 1.0, lp.data(), lp.data(), nullptr, A.data(), mask.data(), 2, 3, c);
  CHECK(d[0] == doctest::Approx(-0.1).epsilon(1e-14));
  CHECK(d[2] == 0.0);
  CHECK(d[3] == doctest::Approx(0.2).epsilon(1e-14));
}

TEST_CASE("posttrain/losses/grpo: clipping with epsilon / epsilon_high, and the k3 term, by hand") {
  // One token, A = 1, r = 1.25. epsilon 0.2: clip at 1.2 is active -> loss -1.2, no policy gradient.
  // epsilon_high 0.28: 1.25 < 1.28, not clipped -> loss -1.25, gradient -A r = -1.25.
  const double lp = std::log(1.25), lo = 0.0, m = 1.0, a = 1.0;
  GRPOConfig c;
  c.beta = 0.0;
  double d = 0;
  GRPOStats s = grpo_loss_forward<double>(&lp, &lo, nullptr, &a, &m, 1, 1, c);
  CHECK(s.loss == doctest::Approx(-1.2).epsilon(1e-14));
  CHECK(s.clip_ratio_high == 1.0);
  grpo_loss_backward<double>(&d, 1.0, &lp, &lo, nullptr, &a, &m, 1, 1, c);
  CHECK(d == 0.0);
  c.epsilon_high = 0.28;
  s = grpo_loss_forward<double>(&lp, &lo, nullptr, &a, &m, 1, 1, c);
  CHECK(s.loss == doctest::Approx(-1.25).epsilon(1e-14));
  CHECK(s.clip_ratio == 0.0);
  grpo_loss_backward<double>(&d, 1.0, &lp, &lo, nullptr, &a, &m, 1, 1, c);
  CHECK(d == doctest::Approx(-1.25).epsilon(1e-14));
  // A = -1, r = 0.75 < 1 - 0.2: clipped from below -> loss max(0.75, 0.8) = 0.8, no gradient.
  const double lp2 = std::log(0.75), a2 = -1.0;
  s = grpo_loss_forward<double>(&lp2, &lo, nullptr, &a2, &m, 1, 1, c);
  CHECK(s.loss == doctest::Approx(0.8).epsilon(1e-14));
  CHECK(s.clip_ratio_low == 1.0);
  // k3 with beta 0.04: lp = log 1.25, lp_ref = 0 -> x = -log 1.25; k3 = 0.8 + log 1.25 - 1
  const double ref = 0.0;
  c.beta = 0.04;
  s = grpo_loss_forward(&lp, &lo, &ref, &a, &m, 1, 1, c);
  const double k3 = 0.8 + std::log(1.25) - 1.0;
  CHECK(s.kl == doctest::Approx(k3).epsilon(1e-13));
  CHECK(s.loss == doctest::Approx(-1.25 + 0.04 * k3).epsilon(1e-13));
  grpo_loss_backward(&d, 1.0, &lp, &lo, &ref, &a, &m, 1, 1, c);
  CHECK(d == doctest::Approx(-1.25 + 0.04 * (1.0 - 0.8)).epsilon(1e-13));
  CHECK(tinyds_test::has(tinyds_test::error_of([&] { grpo_loss_forward<double>(&lp, &lo, nullptr, &a, &m, 1, 1, c); }),
                         "lp_ref is null but beta = 0.04"));
}

TEST_CASE("posttrain/losses/grpo: backward matches finite differences for every loss_type, degenerate group has only KL") {
  GRPOConfig c;
  c.num_generations = 3;
  c.epsilon_high = 0.28;
  c.max_completion_length = 8;
  const int B = 6, T = 5, n = B * T;
  const vec rewards = {1, 0, 0.5, 1, 1, 1};  // group 1 is degenerate
  vec A(B);
  REQUIRE(grpo_advantages(A.data(), rewards.data(), B, c).degenerate_groups == 1);
  const vec mask = {0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  vec lp_old = randn(n, 1, 0.5), lp_ref = randn(n, 2, 0.5), lp(n), dlp(n);
  const vec dr = randn(n, 3, 0.5);  // ratios exp(N(0, 0.5)): many outside [0.8, 1.28]
  for (int k = 0; k < n; k++) {
    lp[k] = lp_old[k] + dr[k];
    const double r = std::exp(dr[k]);
    REQUIRE(std::min(std::fabs(r - 0.8), std::fabs(r - 1.28)) > 1e-3);
  }
  for (GRPOLossType type : {GRPOLossType::grpo, GRPOLossType::bnpo, GRPOLossType::dapo, GRPOLossType::dr_grpo}) {
    const std::string type_name = grpo_loss_type_name(type);
    CAPTURE(type_name);
    c.loss_type = type;
    auto loss = [&] {
      return grpo_loss_forward(lp.data(), lp_old.data(), lp_ref.data(), A.data(), mask.data(), B, T, c).loss;
    };
    auto backward = [&] {
      grpo_loss_backward(dlp.data(), 1.0, lp.data(), lp_old.data(), lp_ref.data(), A.data(), mask.data(), B, T, c);
    };
    run_gradcheck(loss, backward, {{"dlp", &lp, &dlp, false}});
    const GRPOStats s = grpo_loss_forward(lp.data(), lp_old.data(), lp_ref.data(), A.data(), mask.data(), B, T, c);
    CHECK(s.clip_ratio > 0.0);  // the batch exercises the clip
    CHECK(s.clip_ratio < 1.0);
    for (int k = 0; k < n; k++) {
      if (mask[k] == 0.0) CHECK(dlp[k] == 0.0);
      // rows 3..5 (degenerate group, A = 0): only the KL term's gradient remains
      if (k >= 3 * T && k < 6 * T && mask[k] == 1.0)
        CHECK(dlp[k] * (1.0 - std::exp(lp_ref[k] - lp[k])) >= 0.0);  // same sign as beta * dk3/dlp
    }
  }
}

TEST_CASE("posttrain/losses/grpo: group-mean baseline, equals GRPO dr_grpo on-policy times max_completion_length") {
  const int G = 4, B = 8, T = 4;
  const vec rewards = {1, 0, 0, 0, 1, 1, 1, 1};  // second group degenerate
  vec A(B);
  CHECK(reinforce_advantages(A.data(), rewards.data(), B, G) == 1);
  CHECK(A[0] == doctest::Approx(0.75).epsilon(1e-15));
  CHECK(A[1] == doctest::Approx(-0.25).epsilon(1e-15));
  CHECK(A[5] == 0.0);
  vec lp = randn(B * T, 1, 0.5), mask(B * T, 1.0), dlp(B * T), dg(B * T);
  mask[3] = mask[7] = mask[30] = 0.0;
  auto loss = [&] { return reinforce_loss_forward(lp.data(), A.data(), mask.data(), B, T); };
  auto backward = [&] { reinforce_loss_backward(dlp.data(), 1.0, A.data(), mask.data(), B, T); };
  run_gradcheck(loss, backward, {{"dlp", &lp, &dlp, false}});
  // Hand: L = -(1/B) sum_i A_i sum_t m lp; only group 0 contributes.
  double want = 0;
  for (int i = 0; i < 4; i++)
    for (int t = 0; t < T; t++) want -= A[i] * mask[i * T + t] * lp[i * T + t] / B;
  CHECK(loss() == doctest::Approx(want).epsilon(1e-13));
  GRPOConfig c;
  c.beta = 0.0;
  c.loss_type = GRPOLossType::dr_grpo;
  c.num_generations = G;
  c.max_completion_length = 16;
  grpo_loss_backward<double>(dg.data(), 1.0, lp.data(), lp.data(), nullptr, A.data(), mask.data(), B, T, c);
  for (int k = 0; k < B * T; k++) CHECK(dg[k] * 16.0 == doctest::Approx(dlp[k]).epsilon(1e-14));
}

TEST_CASE("posttrain/losses/grpo: float instantiation agrees with double") {
  GRPOConfig c;
  c.num_generations = 2;
  const int B = 4, T = 3, n = B * T;
  const vec rewards = {1, 0, 0.3, 0.9}, mask = {1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1};
  const vec lp_old = randn(n, 4, 0.5), lp_ref = randn(n, 5, 0.5);
  vec lp = randn(n, 6, 0.2), A(B), d(n);
  for (int k = 0; k < n; k++) lp[k] += lp_old[k];
  grpo_advantages(A.data(), rewards.data(), B, c);
  const double ld = grpo_loss_forward(lp.data(), lp_old.data(), lp_ref.data(), A.data(), mask.data(), B, T, c).loss;
  grpo_loss_backward(d.data(), 1.0, lp.data(), lp_old.data(), lp_ref.data(), A.data(), mask.data(), B, T, c);
  std::vector<float> f_lp = to_float(lp), f_lo = to_float(lp_old), f_lr = to_float(lp_ref), f_r = to_float(rewards),
                     f_m = to_float(mask), f_A(B), f_d(n);
  grpo_advantages(f_A.data(), f_r.data(), B, c);
  const double lf = grpo_loss_forward(f_lp.data(), f_lo.data(), f_lr.data(), f_A.data(), f_m.data(), B, T, c).loss;
  grpo_loss_backward(f_d.data(), 1.0, f_lp.data(), f_lo.data(), f_lr.data(), f_A.data(), f_m.data(), B, T, c);
  // float inputs are rounded doubles (6e-8 relative); A is divided by a std ~0.5 (x2); 1e-5 leaves margin
  CHECK(lf == doctest::Approx(ld).epsilon(1e-5));
  CHECK(max_rel_diff(f_d, d) < 1e-5);
}
