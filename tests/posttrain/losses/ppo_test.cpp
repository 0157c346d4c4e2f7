// tests/posttrain/losses/ppo_test.cpp — PPO: per-token rewards, GAE, whitening and the clipped policy + value loss
// (tinyds/posttrain/losses/ppo.h, gae.h).
//
// Gradient tolerance: as tests/ops_util.h. The loss is piecewise smooth (clip and max have kinks); the
// random inputs below are kept at least 1e-3 from every kink (asserted), while the central differences move them
// by h = 1e-5, so every difference quotient stays on one smooth piece.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tests/util/error_util.h"
#include "tests/util/ops_util.h"
#include "tinyds/posttrain/losses/gae.h"
#include "tinyds/posttrain/losses/ppo.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;

TEST_CASE("posttrain/losses/ppo: a 3-step episode by hand, and masked positions are skipped") {
  // rewards (0, 0, 1), values (0.5, 0.6, 0.7), gamma 1, lam 0.95; V after the last token is 0.
  //   delta_2 = 1 + 0 - 0.7 = 0.3                A_2 = 0.3
  //   delta_1 = 0 + 0.7 - 0.6 = 0.1              A_1 = 0.1 + 0.95 * 0.3 = 0.385
  //   delta_0 = 0 + 0.6 - 0.5 = 0.1              A_0 = 0.1 + 0.95 * 0.385 = 0.46575
  //   returns = A + V = (0.96575, 0.985, 1.0)
  const double r[3] = {0, 0, 1}, v[3] = {0.5, 0.6, 0.7}, m[3] = {1, 1, 1};
  double A[3], R[3];
  compute_gae(A, R, r, v, m, 1, 3, 1.0, 0.95);
  CHECK(A[2] == doctest::Approx(0.3).epsilon(1e-14));
  CHECK(A[1] == doctest::Approx(0.385).epsilon(1e-14));
  CHECK(A[0] == doctest::Approx(0.46575).epsilon(1e-14));
  CHECK(R[0] == doctest::Approx(0.96575).epsilon(1e-14));
  CHECK(R[2] == doctest::Approx(1.0).epsilon(1e-14));
  // gamma 0.9, lam 0.5: delta_2 = 0.3; delta_1 = 0.9*0.7 - 0.6 = 0.03; delta_0 = 0.9*0.6 - 0.5 = 0.04
  //   A_2 = 0.3, A_1 = 0.03 + 0.45 * 0.3 = 0.165, A_0 = 0.04 + 0.45 * 0.165 = 0.11425
  compute_gae(A, R, r, v, m, 1, 3, 0.9, 0.5);
  CHECK(A[1] == doctest::Approx(0.165).epsilon(1e-14));
  CHECK(A[0] == doctest::Approx(0.11425).epsilon(1e-14));
  // The same episode inside a row with 2 prompt positions before and 2 padding positions after (garbage there):
  // identical advantages on the completion, 0 elsewhere.
  const double r2[7] = {9, 9, 0, 0, 1, 9, 9}, v2[7] = {5, 5, 0.5, 0.6, 0.7, 5, 5}, m2[7] = {0, 0, 1, 1, 1, 0, 0};
  double A2[7], R2[7];
  compute_gae(A2, R2, r2, v2, m2, 1, 7, 1.0, 0.95);
  CHECK(A2[2] == doctest::Approx(0.46575).epsilon(1e-14));
  CHECK(A2[4] == doctest::Approx(0.3).epsilon(1e-14));
  for (int t : {0, 1, 5, 6}) CHECK((A2[t] == 0.0 && R2[t] == 0.0));
}

TEST_CASE("posttrain/losses/ppo: k1 penalty per token plus the score on the last completion token") {
  // kl_coef 0.05; lp_old - lp_ref = 0.2 on every token -> -0.01; score 1.5 lands on t = 2 (the last with m = 1).
  const double lo[4] = {-1.0, -1.0, -1.0, -1.0}, lr[4] = {-1.2, -1.2, -1.2, -1.2}, m[4] = {1, 1, 1, 0};
  const double score[1] = {1.5};
  double rw[4];
  ppo_rewards(rw, lo, lr, score, m, 1, 4, 0.05);
  CHECK(rw[0] == doctest::Approx(-0.01).epsilon(1e-13));
  CHECK(rw[2] == doctest::Approx(1.49).epsilon(1e-13));
  CHECK(rw[3] == 0.0);
  const double none[4] = {0, 0, 0, 0};
  CHECK(tinyds_test::has(tinyds_test::error_of([&] { ppo_rewards(rw, lo, lr, score, none, 1, 4, 0.05); }),
                         "row 0 of mask has no completion token"));
}

TEST_CASE("posttrain/losses/ppo: unbiased variance over unmasked positions") {
  // x = (1, 2, 3, 100) with the 100 masked: mean 2, unbiased var ((1 + 0 + 1) / 2) = 1.
  const double x[4] = {1, 2, 3, 100}, m[4] = {1, 1, 1, 0};
  double w[4];
  masked_whiten(w, x, m, 4);
  const double s = 1.0 / std::sqrt(1.0 + 1e-8);
  CHECK(w[0] == doctest::Approx(-s).epsilon(1e-14));
  CHECK(w[1] == doctest::Approx(0.0));
  CHECK(w[2] == doctest::Approx(s).epsilon(1e-14));
  CHECK(w[3] == 0.0);
  masked_whiten(w, x, m, 4, false);  // shift_mean = false adds the mean back
  CHECK(w[2] == doctest::Approx(2.0 + s).epsilon(1e-14));
  const double one[4] = {1, 0, 0, 0};
  CHECK(tinyds_test::has(tinyds_test::error_of([&] { masked_whiten(w, x, one, 4); }), "at least 2"));
}

TEST_CASE("posttrain/losses/ppo: clipping cases by hand (policy and value)") {
  PPOConfig c;  // cliprange 0.2, cliprange_value 0.2, vf_coef 0.1
  // Policy, one token each, ratio r = exp(lp - lp_old); value term made zero (V = V_old = R).
  struct Case { double a, r, loss, dlp; } cases[] = {
      {1.0, 1.5, -1.2, 0.0},   // A > 0, r above 1.2: clipped term -1.2 is the max; no gradient
      {-1.0, 1.5, 1.5, 1.5},   // A < 0, r above: unclipped 1.5 is the max; gradient -A r = 1.5
      {1.0, 0.5, -0.5, -0.5},  // A > 0, r below 0.8: unclipped -0.5 is the max; gradient -A r = -0.5
      {-1.0, 0.5, 0.8, 0.0},   // A < 0, r below: clipped 0.8 is the max; no gradient
      {2.0, 1.1, -2.2, -2.2},  // inside the range: both terms equal; gradient -A r
  };
  for (const Case& k : cases) {
    CAPTURE(k.a);
    CAPTURE(k.r);
    const double lp = std::log(k.r), lo = 0.0, v = 0.3, m = 1.0;
    const PPOStats s = ppo_loss_forward(&lp, &v, &lo, &v, &k.a, &v, &m, 1, c);
    CHECK(s.pg_loss == doctest::Approx(k.loss).epsilon(1e-13));
    CHECK(s.pg_clipfrac == (k.dlp == 0.0 ? 1.0 : 0.0));
    double dlp, dv;
    ppo_loss_backward(&dlp, &dv, 1.0, &lp, &v, &lo, &v, &k.a, &v, &m, 1, c);
    CHECK(dlp == doctest::Approx(k.dlp).epsilon(1e-13));
  }
  // Value: V_old 0, R 1. V = 0.5 is clipped to 0.2: (0.2 - 1)^2 = 0.64 > (0.5 - 1)^2 = 0.25 -> loss 0.5 * 0.64,
  // gradient 0. V = -0.5, clipped to -0.2: (V - R)^2 = 2.25 > 1.44 -> unclipped, gradient 0.1 * 0.5 * 2 * (-1.5).
  const double lp = 0.0, a = 0.0, vold = 0.0, ret = 1.0, m = 1.0;
  double v = 0.5, dlp, dv;
  PPOStats s = ppo_loss_forward(&lp, &v, &lp, &vold, &a, &ret, &m, 1, c);
  CHECK(s.vf_loss == doctest::Approx(0.32).epsilon(1e-13));
  CHECK(s.vf_clipfrac == 1.0);
  CHECK(s.loss == doctest::Approx(0.1 * 0.32).epsilon(1e-13));
  ppo_loss_backward(&dlp, &dv, 1.0, &lp, &v, &lp, &vold, &a, &ret, &m, 1, c);
  CHECK(dv == 0.0);
  v = -0.5;
  s = ppo_loss_forward(&lp, &v, &lp, &vold, &a, &ret, &m, 1, c);
  CHECK(s.vf_loss == doctest::Approx(0.5 * 2.25).epsilon(1e-13));
  ppo_loss_backward(&dlp, &dv, 1.0, &lp, &v, &lp, &vold, &a, &ret, &m, 1, c);
  CHECK(dv == doctest::Approx(0.1 * 0.5 * 2.0 * -1.5).epsilon(1e-13));
}

TEST_CASE("posttrain/losses/ppo: loss backward matches finite differences over a masked batch with mixed clipping") {
  const int B = 3, T = 6, n = B * T;
  const vec mask = {0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  vec lp_old = randn(n, 1, 0.5), lp(n), values_old = randn(n, 2, 0.5), values(n), returns = randn(n, 3);
  vec adv = randn(n, 14);
  adv[2] = 0.7;   // with its ratio 1.375 (> 1.2): the clipped policy term is active
  adv[3] = -0.5;  // with its ratio 0.545 (< 0.8): clipped from below
  const vec dr = randn(n, 5, 0.5), dvv = randn(n, 6, 0.3);
  PPOConfig c;
  c.vf_coef = 0.5;  // larger than the default so the value gradients are well above the absolute floor
  for (int i = 0; i < n; i++) {
    lp[i] = lp_old[i] + dr[i];  // ratios exp(N(0, 0.5)): some inside, some outside [0.8, 1.2]
    values[i] = values_old[i] + dvv[i];
  }
  // Keep every input >= 1e-3 away from a kink: r at 1 +- cliprange, V at V_old +- cliprange_value, and the
  // value max's switch (vf1 == vf2, where V - R = -(V_clip - R)).
  int pg_clipped = 0, vf_clipped = 0;
  for (int i = 0; i < n; i++) {
    const double r = std::exp(lp[i] - lp_old[i]);
    REQUIRE(std::min(std::fabs(r - 0.8), std::fabs(r - 1.2)) > 1e-3);
    REQUIRE(std::min(std::fabs(dvv[i] - 0.2), std::fabs(dvv[i] + 0.2)) > 1e-3);
    const double vc = std::clamp(values[i], values_old[i] - 0.2, values_old[i] + 0.2);
    if (vc != values[i]) REQUIRE(std::fabs(std::fabs(values[i] - returns[i]) - std::fabs(vc - returns[i])) > 1e-3);
  }
  vec dlp(n), dv(n);
  auto loss = [&] {
    const PPOStats s = ppo_loss_forward(lp.data(), values.data(), lp_old.data(), values_old.data(), adv.data(),
                                        returns.data(), mask.data(), n, c);
    pg_clipped = static_cast<int>(std::lround(s.pg_clipfrac * 14));
    vf_clipped = static_cast<int>(std::lround(s.vf_clipfrac * 14));
    return s.loss;
  };
  auto backward = [&] {
    ppo_loss_backward(dlp.data(), dv.data(), 1.0, lp.data(), values.data(), lp_old.data(), values_old.data(),
                      adv.data(), returns.data(), mask.data(), n, c);
  };
  run_gradcheck(loss, backward, {{"dlp", &lp, &dlp, false}, {"dvalues", &values, &dv, false}});
  // The batch exercises both branches of both clips (else the check above would prove less than it claims).
  CHECK(pg_clipped > 0);
  CHECK(pg_clipped < 14);
  CHECK(vf_clipped > 0);
  CHECK(vf_clipped < 14);
  for (int i = 0; i < n; i++)
    if (mask[i] == 0.0) CHECK((dlp[i] == 0.0 && dv[i] == 0.0));
}

TEST_CASE("posttrain/losses/ppo: rewards -> GAE -> whiten -> loss pipeline in float agrees with double") {
  const int B = 2, T = 5, n = B * T;
  const vec mask = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1};
  const vec lp_old = randn(n, 7, 0.5), lp_ref = randn(n, 8, 0.5), values = randn(n, 9), scores = {1.0, -0.5};
  vec rw(n), adv(n), ret(n);
  PPOConfig c;
  ppo_rewards(rw.data(), lp_old.data(), lp_ref.data(), scores.data(), mask.data(), B, T, c.kl_coef);
  compute_gae(adv.data(), ret.data(), rw.data(), values.data(), mask.data(), B, T, c.gamma, c.lam);
  masked_whiten(adv.data(), adv.data(), mask.data(), n);
  const double ld = ppo_loss_forward(lp_old.data(), values.data(), lp_old.data(), values.data(), adv.data(),
                                     ret.data(), mask.data(), n, c).loss;
  std::vector<float> f_lo = to_float(lp_old), f_lr = to_float(lp_ref), f_v = to_float(values),
                     f_s = to_float(scores), f_m = to_float(mask), f_rw(n), f_adv(n), f_ret(n);
  ppo_rewards(f_rw.data(), f_lo.data(), f_lr.data(), f_s.data(), f_m.data(), B, T, c.kl_coef);
  compute_gae(f_adv.data(), f_ret.data(), f_rw.data(), f_v.data(), f_m.data(), B, T, c.gamma, c.lam);
  masked_whiten(f_adv.data(), f_adv.data(), f_m.data(), n);
  const double lf = ppo_loss_forward(f_lo.data(), f_v.data(), f_lo.data(), f_v.data(), f_adv.data(), f_ret.data(),
                                     f_m.data(), n, c).loss;
  CHECK(max_rel_diff(f_adv, adv) < 1e-5);  // each stage rounds to float once (6e-8) on values of size ~1
  CHECK(lf == doctest::Approx(ld).epsilon(1e-5));
  // On-policy (lp == lp_old, V == V_old) the policy loss is -mean(A) = 0 for whitened A.
  CHECK(std::fabs(ld - c.vf_coef * 0.5 * [&] {
          double s = 0;
          for (int i = 0; i < n; i++) s += mask[i] * (values[i] - ret[i]) * (values[i] - ret[i]);
          return s / 8.0;
        }()) < 1e-12);
  PPOConfig bad = c;
  bad.cliprange = 1.5;
  CHECK(tinyds_test::has(tinyds_test::error_of([&] {
          ppo_loss_forward(lp_old.data(), values.data(), lp_old.data(), values.data(), adv.data(), ret.data(),
                           mask.data(), n, bad);
        }),
        "cliprange = 1.5"));
}
