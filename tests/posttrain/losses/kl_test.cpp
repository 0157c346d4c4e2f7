// tests/posttrain/losses/kl_test.cpp — the k1 / k2 / k3 KL estimators (tinyds/posttrain/losses/kl.h).
//
// Checks: backward against central differences (tolerance of tests/ops_util.h), values by hand, the
// estimators' expectations under pi computed exactly on a small vocabulary (k1, k3 unbiased for KL(pi || ref)),
// and the claim in kl.h about expected gradients (k2 -> grad KL(pi || ref), k3 -> grad KL(ref || pi), k1 -> 0).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/util/error_util.h"
#include "tests/util/ops_util.h"
#include "tinyds/posttrain/losses/kl.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;

TEST_CASE("posttrain/losses/kl: backward of k1, k2, k3 matches finite differences") {
  const long n = 12;
  vec lp = randn(n, 1), lp_ref = randn(n, 2), R = randn(n, 3), kl(n), dlp(n);
  for (KLEstimator k : {KLEstimator::k1, KLEstimator::k2, KLEstimator::k3}) {
    const std::string name = kl_estimator_name(k);
    CAPTURE(name);
    auto loss = [&] {
      kl_forward(kl.data(), lp.data(), lp_ref.data(), n, k);
      return dot(kl.data(), R.data(), n);
    };
    auto backward = [&] { kl_backward(dlp.data(), R.data(), lp.data(), lp_ref.data(), n, k); };
    run_gradcheck(loss, backward, {{"dlp", &lp, &dlp, false}});
  }
}

TEST_CASE("posttrain/losses/kl: hand values") {
  // lp = -1, lp_ref = -2: x = lp_ref - lp = -1.  k1 = 1, k2 = 1/2, k3 = e^-1 + 1 - 1 = e^-1.
  const double lp = -1.0, lr = -2.0;
  double k = 0;
  kl_forward(&k, &lp, &lr, 1, KLEstimator::k1);
  CHECK(k == doctest::Approx(1.0).epsilon(1e-15));
  kl_forward(&k, &lp, &lr, 1, KLEstimator::k2);
  CHECK(k == doctest::Approx(0.5).epsilon(1e-15));
  kl_forward(&k, &lp, &lr, 1, KLEstimator::k3);
  CHECK(k == doctest::Approx(std::exp(-1.0)).epsilon(1e-15));
  // k3 >= 0 and tiny when pi ~ ref: x = 1e-9 gives x^2 / 2 = 5e-19 (exp(x) - 1 - x would be rounding noise ~1e-16).
  const double a = -3.0, b = -3.0 + 1e-9;
  kl_forward(&k, &a, &b, 1, KLEstimator::k3);
  CHECK(k == doctest::Approx(5e-19).epsilon(1e-6));
}

// pi = softmax(theta), ref fixed; KL(p || q) = sum p (log p - log q).
static vec log_softmax(const vec& th) {
  double m = th[0], s = 0;
  for (double t : th) m = std::max(m, t);
  for (double t : th) s += std::exp(t - m);
  vec out(th.size());
  for (std::size_t i = 0; i < th.size(); i++) out[i] = th[i] - m - std::log(s);
  return out;
}
static double kl_of(const vec& logp, const vec& logq) {
  double s = 0;
  for (std::size_t i = 0; i < logp.size(); i++) s += std::exp(logp[i]) * (logp[i] - logq[i]);
  return s;
}

TEST_CASE("posttrain/losses/kl: exact expectations under pi: values (k1, k3 unbiased) and gradients (kl.h's note)") {
  const int V = 5;
  vec theta = randn(V, 4), logref = log_softmax(randn(V, 5));
  const vec logpi = log_softmax(theta);
  const double kl_fwd = kl_of(logpi, logref);
  double e1 = 0, e2 = 0, e3 = 0;
  for (int y = 0; y < V; y++) {
    const double p = std::exp(logpi[y]);
    e1 += p * kl_estimate(logpi[y], logref[y], KLEstimator::k1);
    e2 += p * kl_estimate(logpi[y], logref[y], KLEstimator::k2);
    e3 += p * kl_estimate(logpi[y], logref[y], KLEstimator::k3);
  }
  CHECK(e1 == doctest::Approx(kl_fwd).epsilon(1e-12));
  CHECK(e3 == doctest::Approx(kl_fwd).epsilon(1e-12));
  CHECK(e2 != doctest::Approx(kl_fwd).epsilon(1e-3));  // k2 is biased

  // Expected gradient of each estimator used as a loss: E_pi[dk/dlp(y) * grad_theta log pi(y)],
  // grad_theta[u] log pi(y) = [u == y] - pi[u].
  auto expected_grad = [&](KLEstimator k) {
    vec g(V, 0.0);
    for (int y = 0; y < V; y++) {
      const double p = std::exp(logpi[y]), d = kl_estimate_dlp(logpi[y], logref[y], k);
      for (int u = 0; u < V; u++) g[u] += p * d * ((u == y ? 1.0 : 0.0) - std::exp(logpi[u]));
    }
    return g;
  };
  // Finite-difference gradients of the true divergences in theta (tolerance as tests/util/ops_util.h).
  auto fwd = [&] { return kl_of(log_softmax(theta), logref); };
  auto rev = [&] { return kl_of(logref, log_softmax(theta)); };
  const vec g_fwd = numeric_grads(fwd, theta.data(), V), g_rev = numeric_grads(rev, theta.data(), V);
  const vec g1 = expected_grad(KLEstimator::k1), g2 = expected_grad(KLEstimator::k2),
            g3 = expected_grad(KLEstimator::k3);
  CHECK(compare_grads(g_fwd.data(), g2.data(), V, kGradAbsFloor).max_rel < kGradRelTol);  // k2: grad KL(pi||ref)
  CHECK(compare_grads(g_rev.data(), g3.data(), V, kGradAbsFloor).max_rel < kGradRelTol);  // k3: grad KL(ref||pi)
  CHECK(compare_grads(g_fwd.data(), g3.data(), V, kGradAbsFloor).max_rel > 1e-2);         // ... not KL(pi||ref)'s
  for (double g : g1) CHECK(std::fabs(g) < 1e-15);                                         // k1: zero
}

TEST_CASE("posttrain/losses/kl: float instantiation and bad estimator") {
  const float lp[2] = {-1.0f, -0.5f}, lr[2] = {-2.0f, -0.25f}, one[2] = {1.0f, 1.0f};
  float k[2], d[2];
  kl_forward(k, lp, lr, 2, KLEstimator::k3);
  kl_backward(d, one, lp, lr, 2, KLEstimator::k3);
  CHECK(k[0] == doctest::Approx(std::exp(-1.0)).epsilon(1e-6));
  CHECK(d[1] == doctest::Approx(1.0 - std::exp(-0.25 + 0.5)).epsilon(1e-6));
  const std::string e = tinyds_test::error_of([&] { kl_forward(k, lp, lr, 2, static_cast<KLEstimator>(7)); });
  CHECK(tinyds_test::has(e, "estimator = 7"));
}
