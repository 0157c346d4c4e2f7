// tests/posttrain/losses/distill_test.cpp — alpha T^2 KL + (1 - alpha) CE distillation (tinyds/posttrain/losses/distill.h).
//
// Gradient tolerance: as tests/ops_util.h (1e-6 relative above 1e-2, 1e-8 absolute below).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tests/util/error_util.h"
#include "tests/util/ops_util.h"
#include "tinyds/posttrain/losses/distill.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;

TEST_CASE("posttrain/losses/distill: backward matches finite differences (forward and reverse KL, masked rows)") {
  const int N = 6, V = 7;
  const std::vector<int> targets = {2, -1, 0, 6, -1, 4};
  vec s = randn(N * V, 1, 2.0), t = randn(N * V, 2, 2.0), ds(N * V);
  for (DistillDivergence div : {DistillDivergence::forward_kl, DistillDivergence::reverse_kl})
    for (double T : {1.0, 2.5}) {
      CAPTURE(static_cast<int>(div));
      CAPTURE(T);
      DistillConfig cfg;
      cfg.alpha = 0.7;
      cfg.temperature = T;
      cfg.divergence = div;
      auto loss = [&] { return distill_loss_forward(s.data(), t.data(), targets.data(), N, V, cfg).loss; };
      auto backward = [&] { distill_loss_backward(ds.data(), 1.0, s.data(), t.data(), targets.data(), N, V, cfg); };
      run_gradcheck(loss, backward, {{"dstudent_logits", &s, &ds, false}});
      for (int v = 0; v < V; v++) CHECK(ds[1 * V + v] == 0.0);
    }
}

TEST_CASE("posttrain/losses/distill: hand-computed one-row loss with T^2, teacher == student has no soft gradient") {
  // V = 2, one row, target 0. Student logits (0, 0), teacher (0, 2 ln 3) at T = 2: p_s = (1/2, 1/2),
  // p_t = softmax(0, ln 3) = (1/4, 3/4).
  //   forward KL(p_t || p_s) = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.1308120617...   ( = (1/4)ln(1/4 / 1/2) + (3/4)ln(3/4 / 1/2) )
  //   reverse KL(p_s || p_t) = 1/2 ln 2 + 1/2 ln(2/3) = 0.1438410362...
  //   CE at T = 1 of (0, 0), target 0 = ln 2
  const double s[2] = {0.0, 0.0}, t[2] = {0.0, 2.0 * std::log(3.0)};
  const int y[1] = {0};
  const double fwd = 0.25 * std::log(0.5) + 0.75 * std::log(1.5);
  const double rev = 0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0);
  DistillConfig cfg;  // alpha 0.5, T 2: loss = 0.5 * 4 * KL + 0.5 * ln 2
  DistillStats st = distill_loss_forward(s, t, y, 1, 2, cfg);
  CHECK(st.kl == doctest::Approx(fwd).epsilon(1e-14));
  CHECK(st.ce == doctest::Approx(std::log(2.0)).epsilon(1e-14));
  CHECK(st.loss == doctest::Approx(0.5 * 4.0 * fwd + 0.5 * std::log(2.0)).epsilon(1e-14));
  cfg.divergence = DistillDivergence::reverse_kl;
  st = distill_loss_forward(s, t, y, 1, 2, cfg);
  CHECK(st.loss == doctest::Approx(0.5 * 4.0 * rev + 0.5 * std::log(2.0)).epsilon(1e-14));
  // Forward-KL gradient by hand: alpha T (p_s - p_t) + (1 - alpha) (q - onehot) = 0.5*2*(1/4, -1/4) + 0.5*(-1/2, 1/2)
  cfg.divergence = DistillDivergence::forward_kl;
  double g[2];
  distill_loss_backward(g, 1.0, s, t, y, 1, 2, cfg);
  CHECK(g[0] == doctest::Approx(0.25 - 0.25).epsilon(1e-14));
  CHECK(g[1] == doctest::Approx(-0.25 + 0.25).epsilon(1e-14));
  cfg.alpha = 1.0;  // soft term only
  distill_loss_backward(g, 1.0, s, t, y, 1, 2, cfg);
  CHECK(g[0] == doctest::Approx(0.5).epsilon(1e-14));  // 1 * 2 * (1/2 - 1/4)

  // Teacher identical to the student: KL = 0 in both directions, gradient = (1 - alpha) * CE gradient only.
  const int N = 3, V = 5;
  const std::vector<int> tg = {1, 4, 0};
  vec x = randn(N * V, 3), gsame(N * V), gce(N * V);
  DistillConfig c2;
  c2.alpha = 0.3;
  for (DistillDivergence div : {DistillDivergence::forward_kl, DistillDivergence::reverse_kl}) {
    c2.divergence = div;
    CHECK(std::fabs(distill_loss_forward(x.data(), x.data(), tg.data(), N, V, c2).kl) < 1e-15);
    distill_loss_backward(gsame.data(), 1.0, x.data(), x.data(), tg.data(), N, V, c2);
    DistillConfig ce_only = c2;
    ce_only.alpha = 0.0;
    distill_loss_backward(gce.data(), 1.0, x.data(), x.data(), tg.data(), N, V, ce_only);
    for (int i = 0; i < N * V; i++) CHECK(gsame[i] == doctest::Approx(0.7 * gce[i]).epsilon(1e-12));
  }
}

TEST_CASE("posttrain/losses/distill: float instantiation and bad options") {
  const int N = 2, V = 4;
  const std::vector<int> tg = {3, 0};
  vec s = randn(N * V, 4), t = randn(N * V, 5), gd(N * V);
  std::vector<float> sf = to_float(s), tf = to_float(t), gf(N * V);
  DistillConfig cfg;
  const double ld = distill_loss_forward(s.data(), t.data(), tg.data(), N, V, cfg).loss;
  const double lf = distill_loss_forward(sf.data(), tf.data(), tg.data(), N, V, cfg).loss;
  CHECK(lf == doctest::Approx(ld).epsilon(1e-5));  // float inputs are the doubles rounded (6e-8 relative)
  distill_loss_backward(gd.data(), 1.0, s.data(), t.data(), tg.data(), N, V, cfg);
  distill_loss_backward(gf.data(), 1.0, sf.data(), tf.data(), tg.data(), N, V, cfg);
  CHECK(max_rel_diff(gf, gd) < 1e-5);
  cfg.alpha = 1.5;
  CHECK(tinyds_test::has(tinyds_test::error_of([&] { distill_loss_forward(s.data(), t.data(), tg.data(), N, V, cfg); }),
                         "alpha = 1.5"));
  cfg.alpha = 0.5;
  cfg.temperature = -1.0;
  CHECK(tinyds_test::has(tinyds_test::error_of([&] { distill_loss_forward(s.data(), t.data(), tg.data(), N, V, cfg); }),
                         "temperature = -1"));
}
