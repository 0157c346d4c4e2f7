// tests/ops/adamw_test.cpp — AdamW against an independent scalar re-implementation of its formula, a first step
// worked from the formula by hand, and global-norm clipping.
//
// Shapes: n parameters.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tests/util/ops_util.h"
#include "tinyds/core/error.h"
#include "tinyds/ops/adamw.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;

namespace {

// The hyperparameters are floats in the API; the reference uses exactly those float values, widened to double.
const float kLr = 3e-3f, kB1 = 0.9f, kB2 = 0.95f, kEps = 1e-8f, kWd = 0.1f;

// One parameter through `steps` AdamW steps, straight from Loshchilov & Hutter Algorithm 2 (decoupled decay).
double adamw_scalar(double p, const vec& grads_over_steps) {
  const double lr = kLr, b1 = kB1, b2 = kB2, eps = kEps, wd = kWd;
  double m = 0, v = 0;
  for (std::size_t s = 0; s < grads_over_steps.size(); s++) {
    const int t = static_cast<int>(s) + 1;
    const double g = grads_over_steps[s];
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double mhat = m / (1 - std::pow(b1, t)), vhat = v / (1 - std::pow(b2, t));
    p = p - lr * (mhat / (std::sqrt(vhat) + eps) + wd * p);
  }
  return p;
}

}  // namespace

TEST_CASE("ops/adamw: several steps match an independent scalar implementation (double and float)") {
  const std::size_t n = 50;
  const int steps = 6;
  const vec p0 = randn(n, 1);
  std::vector<vec> grads;
  for (int s = 0; s < steps; s++) grads.push_back(randn(n, 10 + s, 0.1 + 0.3 * s));

  vec p = p0, m(n, 0.0), v(n, 0.0);
  std::vector<float> pf = to_float(p0), mf(n, 0.0f), vf(n, 0.0f);
  for (int s = 0; s < steps; s++) {
    adamw_update(p.data(), grads[s].data(), m.data(), v.data(), n, kLr, kB1, kB2, kEps, kWd, s + 1);
    const std::vector<float> gf = to_float(grads[s]);
    adamw_update(pf.data(), gf.data(), mf.data(), vf.data(), n, kLr, kB1, kB2, kEps, kWd, s + 1);
  }
  for (std::size_t i = 0; i < n; i++) {
    vec gi;
    for (int s = 0; s < steps; s++) gi.push_back(grads[s][i]);
    const double ref = adamw_scalar(p0[i], gi);
    // Same formula in double, only the operation order differs: ~1e-16 relative per step.
    CHECK(p[i] == doctest::Approx(ref).epsilon(1e-13));
    // Float: each step moves p by ~lr = 3e-3 with ~1e-7 relative error in the step, so |p_f - p| ~ 1e-7 |p|
    // plus accumulated step rounding ~ steps * lr * 1e-6: 1e-6 absolute/relative is a safe bound.
    CHECK(static_cast<double>(pf[i]) == doctest::Approx(ref).epsilon(1e-6).scale(1.0));
  }
}

TEST_CASE("ops/adamw: first step worked from the formula for one element") {
  // Step 1 from m = v = 0: m = (1 - b1) g, v = (1 - b2) g^2, so mhat = g and vhat = g^2 and the update is
  // lr * (g / (|g| + eps) + wd * p): a sign-like step of size ~lr plus the decoupled decay.
  double p = 0.5, g = -0.2, m = 0, v = 0;
  adamw_update(&p, &g, &m, &v, 1, kLr, kB1, kB2, kEps, kWd, 1);
  const double lr = kLr, wd = kWd, eps = kEps;
  const double expected = 0.5 - lr * (-0.2 / (0.2 + eps) + wd * 0.5);
  CHECK(p == doctest::Approx(expected).epsilon(1e-14));
  CHECK(m == doctest::Approx((1 - static_cast<double>(kB1)) * -0.2).epsilon(1e-15));
  CHECK(v == doctest::Approx((1 - static_cast<double>(kB2)) * 0.04).epsilon(1e-15));
  // Without decay, the step is (almost exactly) lr in the direction opposite to g.
  double q = 1.0, g2 = 5.0, m2 = 0, v2 = 0;
  adamw_update(&q, &g2, &m2, &v2, 1, kLr, kB1, kB2, kEps, 0.0f, 1);
  CHECK(q == doctest::Approx(1.0 - lr * 5.0 / (5.0 + eps)).epsilon(1e-14));
  CHECK_THROWS_AS(adamw_update(&q, &g2, &m2, &v2, 1, kLr, kB1, kB2, kEps, 0.0f, 0), tinyds::Error);
}

// The norm's bits are part of a run's result (it sets the clip scale, every step of the demo's SFT), so its order of
// additions is fixed: each chunk of 2^14 values summed in index order, then the chunks' sums in chunk order. The
// reference below is that definition written as plainly as possible; the op sums several chunks side by side, and
// must give exactly the same double. The sizes cover fewer chunks than one side-by-side group (8), whole groups,
// and whole groups followed by a short last chunk; each value is scaled by 10^(3z), z standard normal, so that any
// other order of additions changes the last bits.
TEST_CASE("ops/adamw: global_norm adds in its fixed order, whatever the grouping inside") {
  const std::size_t chunk = 1 << 14;
  for (std::size_t n : {std::size_t(1), chunk + 3, 8 * chunk, 8 * chunk + 1, 17 * chunk + 12345}) {
    CAPTURE(n);
    std::vector<float> g = to_float(randn(n, 11));
    const vec scale = randn(n, 12);
    for (std::size_t i = 0; i < n; i++) g[i] *= static_cast<float>(std::pow(10.0, 3.0 * scale[i]));
    double total = 0;
    for (std::size_t c0 = 0; c0 < n; c0 += chunk) {
      double s = 0;
      for (std::size_t i = c0; i < std::min(n, c0 + chunk); i++) s += static_cast<double>(g[i]) * g[i];
      total += s;
    }
    CHECK(global_norm(g.data(), n) == std::sqrt(total));
    const vec gd(g.begin(), g.end());
    CHECK(global_norm(gd.data(), n) == std::sqrt(total));  // the float values widened to double: the same sum
  }
}

TEST_CASE("ops/adamw: global_norm and clip_grad_norm") {
  // n spans several of global_norm's fixed chunks (2^14 elements each).
  const std::size_t n = 40000;
  vec g = randn(n, 3, 0.01);
  double direct = 0;
  for (double x : g) direct += x * x;
  direct = std::sqrt(direct);
  const double norm = global_norm(g.data(), n);
  CHECK(norm == doctest::Approx(direct).epsilon(1e-13));  // same sum, different grouping

  SUBCASE("clipped: the new norm equals max_norm") {
    const double max_norm = norm / 3.0;
    const double scale = clip_grad_norm(g.data(), n, norm, max_norm);
    CHECK(scale == doctest::Approx(1.0 / 3.0).epsilon(1e-15));
    CHECK(global_norm(g.data(), n) == doctest::Approx(max_norm).epsilon(1e-13));
  }
  SUBCASE("not clipped when norm <= max_norm or max_norm <= 0: g unchanged") {
    const vec before = g;
    CHECK(clip_grad_norm(g.data(), n, norm, norm * 2) == 1.0);
    CHECK(clip_grad_norm(g.data(), n, norm, 0.0) == 1.0);
    CHECK(g == before);
  }
  SUBCASE("float gradients") {
    std::vector<float> gf = to_float(g);
    // The float values widened to double are exact, so the double accumulation gives the same norm as for
    // their double copies up to summation order.
    vec gd(gf.begin(), gf.end());
    CHECK(global_norm(gf.data(), n) == doctest::Approx(global_norm(gd.data(), n)).epsilon(1e-13));
    const double nf = global_norm(gf.data(), n);
    clip_grad_norm(gf.data(), n, nf, 0.5 * nf);
    CHECK(global_norm(gf.data(), n) == doctest::Approx(0.5 * nf).epsilon(1e-6));  // float rounding of g * s
  }
}
