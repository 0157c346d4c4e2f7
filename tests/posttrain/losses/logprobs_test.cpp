// tests/posttrain/losses/logprobs_test.cpp — per-token log-probs, entropy and the SFT loss (tinyds/posttrain/losses/logprobs.h,
// sft.h): finite-difference checks of every backward in double, plus forwards computed by hand.
//
// Gradient tolerance: kGradRelTol / kGradAbsFloor of tests/ops_util.h (1e-6 relative above 1e-2, 1e-8
// absolute below; h = 1e-5 central differences in double are accurate to ~1e-10 on these smooth row functions).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tests/util/error_util.h"
#include "tests/util/ops_util.h"
#include "tinyds/ops/cross_entropy.h"
#include "tinyds/posttrain/losses/logprobs.h"
#include "tinyds/posttrain/losses/sft.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;

TEST_CASE("posttrain/losses/logprobs: backward matches finite differences at T = 1 and T = 0.7, masked rows zero") {
  const int N = 6, V = 7;
  const std::vector<int> targets = {3, -1, 0, 6, 2, -1};
  vec logits = randn(N * V, 1, 2.0), R = randn(N, 2), lp(N), dlogits(N * V);
  for (double temperature : {1.0, 0.7}) {
    CAPTURE(temperature);
    auto loss = [&] {
      logprobs_forward(lp.data(), logits.data(), targets.data(), N, V, temperature);
      return dot(lp.data(), R.data(), N);
    };
    auto backward = [&] {
      logprobs_backward(dlogits.data(), R.data(), logits.data(), targets.data(), N, V, temperature);
    };
    run_gradcheck(loss, backward, {{"dlogits", &logits, &dlogits, false}});
    CHECK(lp[1] == 0.0);
    CHECK(lp[5] == 0.0);
    for (int v = 0; v < V; v++) CHECK(dlogits[1 * V + v] == 0.0);
    // Forward against the definition: log(exp(x_t / T) / sum_v exp(x_v / T)), directly.
    for (int n : {0, 2, 3, 4}) {
      double z = 0;
      for (int v = 0; v < V; v++) z += std::exp(logits[n * V + v] / temperature);
      CHECK(lp[n] == doctest::Approx(std::log(std::exp(logits[n * V + targets[n]] / temperature) / z)).epsilon(1e-12));
    }
  }
}

TEST_CASE("posttrain/losses/logprobs: a hand-computed row, temperature divides the logits") {
  // logits 2*(0, ln 2, ln 3) at T = 2 are z = (0, ln 2, ln 3): p = (1, 2, 3) / 6.
  const double x[3] = {0.0, 2.0 * std::log(2.0), 2.0 * std::log(3.0)};
  const int t2[1] = {2}, t0[1] = {0};
  double lp = 0, h = 0;
  logprobs_forward(&lp, x, t2, 1, 3, 2.0);
  CHECK(lp == doctest::Approx(std::log(0.5)).epsilon(1e-14));
  logprobs_forward(&lp, x, t0, 1, 3, 2.0);
  CHECK(lp == doctest::Approx(std::log(1.0 / 6.0)).epsilon(1e-14));
  // H = -(1/6 ln 1/6 + 1/3 ln 1/3 + 1/2 ln 1/2) = 1.0114042647073518
  entropy_forward(&h, x, t0, 1, 3, 2.0);
  CHECK(h == doctest::Approx(1.0114042647073518).epsilon(1e-14));
}

TEST_CASE("posttrain/losses/logprobs: backward matches finite differences, masked rows zero") {
  const int N = 5, V = 6;
  const std::vector<int> targets = {0, 4, -1, 5, 1};  // entropy ignores which token; -1 masks the row
  vec logits = randn(N * V, 3, 1.5), R = randn(N, 4), ent(N), dlogits(N * V);
  for (double temperature : {1.0, 1.6}) {
    CAPTURE(temperature);
    auto loss = [&] {
      entropy_forward(ent.data(), logits.data(), targets.data(), N, V, temperature);
      return dot(ent.data(), R.data(), N);
    };
    auto backward = [&] {
      entropy_backward(dlogits.data(), R.data(), logits.data(), targets.data(), N, V, temperature);
    };
    run_gradcheck(loss, backward, {{"dlogits", &logits, &dlogits, false}});
    CHECK(ent[2] == 0.0);
    for (int n : {0, 1, 3, 4}) CHECK((ent[n] > 0.0 && ent[n] < std::log(V) + 1e-12));  // 0 < H <= log V
  }
}

TEST_CASE("posttrain/losses/logprobs: equals the masked mean of ops/cross_entropy, gradient through logprobs matches FD") {
  const int N = 8, V = 9;
  const std::vector<int> targets = {-1, -1, 4, 0, 8, 2, -1, 3};  // prompt, prompt, 4 completion tokens, pad, 1
  vec mask(N);
  for (int n = 0; n < N; n++) mask[n] = targets[n] < 0 ? 0.0 : 1.0;
  vec logits = randn(N * V, 5, 2.0), lp(N), dlp(N), dlogits(N * V);
  auto loss = [&] {
    logprobs_forward(lp.data(), logits.data(), targets.data(), N, V);
    return sft_loss_forward(lp.data(), mask.data(), N);
  };
  auto backward = [&] {
    logprobs_forward(lp.data(), logits.data(), targets.data(), N, V);
    sft_loss_backward(dlp.data(), 1.0, mask.data(), N);
    logprobs_backward(dlogits.data(), dlp.data(), logits.data(), targets.data(), N, V);
  };
  run_gradcheck(loss, backward, {{"dlogits", &logits, &dlogits, false}});
  // Independent: the existing fused cross-entropy op, averaged over the 5 unmasked rows by hand.
  vec ce(N), lse(N);
  cross_entropy_forward(ce.data(), lse.data(), logits.data(), targets.data(), N, V);
  double mean = 0;
  for (int n = 0; n < N; n++) mean += ce[n] / 5.0;
  CHECK(loss() == doctest::Approx(mean).epsilon(1e-12));
  // Masked tokens get zero gradient whatever their lp.
  sft_loss_backward(dlp.data(), 1.0, mask.data(), N);
  CHECK(dlp[0] == 0.0);
  CHECK(dlp[6] == 0.0);
  CHECK(dlp[2] == doctest::Approx(-1.0 / 5.0).epsilon(1e-15));
  // All-masked batch: loss 0 and gradient 0, not 0/0.
  vec none(N, 0.0);
  CHECK(sft_loss_forward(lp.data(), none.data(), N) == 0.0);
}

TEST_CASE("posttrain/losses/logprobs: float instantiation agrees with double") {
  const int N = 4, V = 10;
  const std::vector<int> targets = {1, 9, -1, 0};
  vec logits = randn(N * V, 6, 3.0), lp(N), dl(N * V), one(N, 1.0);
  std::vector<float> lf = to_float(logits), lpf(N), dlf(N * V), onef(N, 1.0f);
  logprobs_forward(lp.data(), logits.data(), targets.data(), N, V, 0.9);
  logprobs_forward(lpf.data(), lf.data(), targets.data(), N, V, 0.9);
  logprobs_backward(dl.data(), one.data(), logits.data(), targets.data(), N, V, 0.9);
  logprobs_backward(dlf.data(), onef.data(), lf.data(), targets.data(), N, V, 0.9);
  // float inputs are the rounded doubles (relative 6e-8 each, times |logit / T| ~ 10): 1e-5 is a safe bound
  CHECK(max_rel_diff(lpf, lp) < 1e-5);
  CHECK(max_rel_diff(dlf, dl) < 1e-5);
}

TEST_CASE("posttrain/losses/logprobs: bad inputs name the field and value") {
  const double x[4] = {0, 0, 0, 0};
  double out[2] = {0, 0};
  const int bad[2] = {0, 2}, ok[2] = {0, 1};
  const std::string e1 = tinyds_test::error_of([&] { logprobs_forward(out, x, bad, 2, 2); });
  CHECK(tinyds_test::has(e1, "targets[1] = 2"));
  const std::string e2 = tinyds_test::error_of([&] { logprobs_forward(out, x, ok, 2, 2, 0.0); });
  CHECK(tinyds_test::has(e2, "temperature = 0"));
  const double half[2] = {1.0, 0.5};
  const std::string e3 = tinyds_test::error_of([&] { sft_loss_forward(x, half, 2); });
  CHECK(tinyds_test::has(e3, "mask[1] = 0.5"));
}
