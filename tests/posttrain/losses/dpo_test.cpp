// tests/posttrain/losses/dpo_test.cpp — DPO (sigmoid), length-normalised DPO and IPO (tinyds/posttrain/losses/dpo.h).
//
// Gradient tolerance: as tests/ops_util.h (1e-6 relative above 1e-2, 1e-8 absolute below).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tests/util/error_util.h"
#include "tests/util/ops_util.h"
#include "tinyds/posttrain/losses/dpo.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;

namespace {
// B = 3 pairs, T = 5; masks with a prompt prefix and padding, different lengths for chosen and rejected.
struct DPOBatch {
  static constexpr int B = 3, T = 5;
  vec lp_w = randn(B * T, 1, 0.5), lr_w = randn(B * T, 2, 0.5), lp_l = randn(B * T, 3, 0.5),
      lr_l = randn(B * T, 4, 0.5);
  vec m_w = {0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  vec m_l = {0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1};
  vec dw = vec(B * T), dl = vec(B * T);
  DPOStats forward(const DPOConfig& c) {
    return dpo_loss_forward(lp_w.data(), lr_w.data(), m_w.data(), lp_l.data(), lr_l.data(), m_l.data(), B, T, c);
  }
  void backward(const DPOConfig& c) {
    dpo_loss_backward(dw.data(), dl.data(), 1.0, lp_w.data(), lr_w.data(), m_w.data(), lp_l.data(), lr_l.data(),
                      m_l.data(), B, T, c);
  }
};
}  // namespace

TEST_CASE("posttrain/losses/dpo: backward matches finite differences (sigmoid, length-normalised, ipo), masks") {
  DPOBatch d;
  DPOConfig variants[3];
  variants[1].length_normalize = true;
  variants[2].loss_type = DPOLossType::ipo;
  for (const DPOConfig& c : variants) {
    CAPTURE(static_cast<int>(c.loss_type));
    CAPTURE(c.length_normalize);
    auto loss = [&] { return d.forward(c).loss; };
    auto backward = [&] { d.backward(c); };
    run_gradcheck(loss, backward, {{"dlp_w", &d.lp_w, &d.dw, false}, {"dlp_l", &d.lp_l, &d.dl, false}});
    for (int k = 0; k < DPOBatch::B * DPOBatch::T; k++) {  // masked tokens: no gradient
      if (d.m_w[k] == 0.0) CHECK(d.dw[k] == 0.0);
      if (d.m_l[k] == 0.0) CHECK(d.dl[k] == 0.0);
    }
    // and changing a masked token's log-prob changes nothing
    const double before = d.forward(c).loss;
    d.lp_w[0] += 3.0;
    d.lp_l[4] -= 3.0;
    CHECK(d.forward(c).loss == before);
    d.lp_w[0] -= 3.0;
    d.lp_l[4] += 3.0;
  }
}

TEST_CASE("posttrain/losses/dpo: hand-computed pair (sum, per-token mean, ipo) and reported rewards") {
  // One pair, T = 3. Chosen: lp - lp_ref = (0.2, 0.3, 0 masked) -> sum 0.5, mean 0.25.
  // Rejected: lp - lp_ref = (-0.1, -0.2, -0.3) -> sum -0.6, mean -0.2.
  const double lp_w[3] = {-1.0, -2.0, -9.0}, lr_w[3] = {-1.2, -2.3, -1.0}, m_w[3] = {1, 1, 0};
  const double lp_l[3] = {-1.1, -1.2, -1.3}, lr_l[3] = {-1.0, -1.0, -1.0}, m_l[3] = {1, 1, 1};
  DPOConfig c;  // beta 0.1, sigmoid, sums: h = 0.5 + 0.6 = 1.1, loss = log(1 + exp(-0.11))
  DPOStats s = dpo_loss_forward(lp_w, lr_w, m_w, lp_l, lr_l, m_l, 1, 3, c);
  CHECK(s.loss == doctest::Approx(std::log1p(std::exp(-0.11))).epsilon(1e-13));
  CHECK(s.rewards_chosen == doctest::Approx(0.05).epsilon(1e-13));
  CHECK(s.rewards_rejected == doctest::Approx(-0.06).epsilon(1e-13));
  CHECK(s.rewards_margin == doctest::Approx(0.11).epsilon(1e-13));
  CHECK(s.rewards_accuracy == 1.0);
  double dw[3], dl[3];
  dpo_loss_backward(dw, dl, 1.0, lp_w, lr_w, m_w, lp_l, lr_l, m_l, 1, 3, c);
  // dl/dh = -beta sigmoid(-beta h) = -0.1 / (1 + e^0.11)
  const double g = -0.1 / (1.0 + std::exp(0.11));
  CHECK(dw[0] == doctest::Approx(g).epsilon(1e-13));
  CHECK(dw[2] == 0.0);
  CHECK(dl[1] == doctest::Approx(-g).epsilon(1e-13));
  c.length_normalize = true;  // h = 0.25 + 0.2 = 0.45
  s = dpo_loss_forward(lp_w, lr_w, m_w, lp_l, lr_l, m_l, 1, 3, c);
  CHECK(s.loss == doctest::Approx(std::log1p(std::exp(-0.045))).epsilon(1e-13));
  dpo_loss_backward(dw, dl, 1.0, lp_w, lr_w, m_w, lp_l, lr_l, m_l, 1, 3, c);
  CHECK(dw[0] == doctest::Approx(-0.1 / (1.0 + std::exp(0.045)) / 2.0).epsilon(1e-13));  // / 2 chosen tokens
  CHECK(dl[0] == doctest::Approx(0.1 / (1.0 + std::exp(0.045)) / 3.0).epsilon(1e-13));   // / 3 rejected tokens
  c.loss_type = DPOLossType::ipo;  // per-token means: (0.45 - 1 / 0.2)^2 = (-4.55)^2
  c.length_normalize = false;      // ipo uses the means regardless
  s = dpo_loss_forward(lp_w, lr_w, m_w, lp_l, lr_l, m_l, 1, 3, c);
  CHECK(s.loss == doctest::Approx(4.55 * 4.55).epsilon(1e-13));
}

TEST_CASE("posttrain/losses/dpo: float instantiation, errors name the field") {
  DPOBatch d;
  DPOConfig c;
  std::vector<float> a = to_float(d.lp_w), b = to_float(d.lr_w), mw = to_float(d.m_w), e = to_float(d.lp_l),
                     f = to_float(d.lr_l), ml = to_float(d.m_l);
  const double lf = dpo_loss_forward(a.data(), b.data(), mw.data(), e.data(), f.data(), ml.data(), 3, 5, c).loss;
  CHECK(lf == doctest::Approx(d.forward(c).loss).epsilon(1e-6));  // float inputs, double arithmetic inside
  c.beta = 0.0;
  CHECK(tinyds_test::has(tinyds_test::error_of([&] { d.forward(c); }), "beta = 0"));
  c.beta = 0.1;
  c.length_normalize = true;
  std::fill(d.m_l.begin() + 5, d.m_l.begin() + 10, 0.0);
  CHECK(tinyds_test::has(tinyds_test::error_of([&] { d.forward(c); }), "pair 1: mask_l is all 0"));
}
