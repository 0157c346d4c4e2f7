// tests/ops/gradcheck_test.cpp — finite-difference checks of every elementwise/row op's backward, in double.
//
// Each test builds random inputs, a fixed random projection R and the loss L = sum(out * R), so dL/dout = R;
// backward is run with dout = R and compared element by element with central differences (tests/util/ops_util.h
// states the tolerance and also checks written-vs-accumulated gradient semantics).
// Shapes are small (C 8, V 11, B 2, T 5) so every element can be checked in milliseconds.
#include <doctest/doctest.h>

#include <vector>

#include "tests/util/ops_util.h"
#include "tinyds/ops/cross_entropy.h"
#include "tinyds/ops/embedding.h"
#include "tinyds/ops/matmul.h"
#include "tinyds/ops/residual.h"
#include "tinyds/ops/rmsnorm.h"
#include "tinyds/ops/rope.h"
#include "tinyds/ops/swiglu.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;

TEST_CASE("ops/gradcheck: backward matches finite differences and accumulates") {
  const int N = 10, C = 8, V = 11;
  // Repeated tokens (3 three times, 7 twice) check that their rows' gradients sum.
  const std::vector<int> tokens = {3, 0, 7, 3, 10, 7, 3, 1, 5, 9};
  vec wte = randn(V * C, 1), R = randn(N * C, 2), out(N * C), dwte(V * C);
  auto loss = [&] {
    embedding_forward(out.data(), tokens.data(), wte.data(), N, C);
    return dot(out.data(), R.data(), out.size());
  };
  auto backward = [&] { embedding_backward(dwte.data(), R.data(), tokens.data(), N, C); };
  run_gradcheck(loss, backward, {{"dwte", &wte, &dwte, true}});
  // Rows of tokens never used get exactly zero gradient.
  for (int c = 0; c < C; c++) CHECK(dwte[2 * C + c] == 0.0);
}

TEST_CASE("ops/gradcheck: backward matches finite differences") {
  const int N = 6, C = 8;
  const double eps = 1e-5;
  vec x = randn(N * C, 1), w = randn(C, 2, 0.5), R = randn(N * C, 3), out(N * C), rstd(N);
  for (auto& wi : w) wi += 1.0;  // weights near 1, as after initialisation
  vec dx(N * C), dw(C);
  auto loss = [&] {
    rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, eps);
    return dot(out.data(), R.data(), out.size());
  };
  loss();  // fills rstd for backward
  auto backward = [&] { rmsnorm_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C); };
  run_gradcheck(loss, backward, {{"dinp", &x, &dx, false}, {"dweight", &w, &dw, true}});
  // Independent check of the forward: the first row by the definition out = x / sqrt(mean(x^2) + eps) * w.
  double ms = 0;
  for (int c = 0; c < C; c++) ms += x[c] * x[c] / C;
  for (int c = 0; c < C; c++) CHECK(out[c] == doctest::Approx(x[c] / std::sqrt(ms + eps) * w[c]).epsilon(1e-12));
}

TEST_CASE("ops/gradcheck: matmul backward matches finite differences, with and without dinp") {
  const int N = 7, IC = 8, OC = 5;
  vec x = randn(N * IC, 1), W = randn(OC * IC, 2), R = randn(N * OC, 4), out(N * OC);
  vec dx(N * IC), dW(OC * IC);
  // Independent forward check against the defining triple loop.
  matmul_forward(out.data(), x.data(), W.data(), N, IC, OC);
  for (int n = 0; n < N; n++)
    for (int o = 0; o < OC; o++) {
      double s = 0;
      for (int i = 0; i < IC; i++) s += x[n * IC + i] * W[o * IC + i];
      CHECK(out[n * OC + o] == doctest::Approx(s).epsilon(1e-12));
    }
  auto loss = [&] {
    matmul_forward(out.data(), x.data(), W.data(), N, IC, OC);
    return dot(out.data(), R.data(), out.size());
  };
  SUBCASE("dinp and dweight") {
    auto backward = [&] { matmul_backward(dx.data(), dW.data(), R.data(), x.data(), W.data(), N, IC, OC); };
    run_gradcheck(loss, backward, {{"dinp", &x, &dx, false}, {"dweight", &W, &dW, true}});
  }
  // A bare nullptr cannot deduce `real`, so this call names the type: matmul_backward<double>(nullptr, ...).
  SUBCASE("dinp nullptr") {
    auto backward = [&] { matmul_backward<double>(nullptr, dW.data(), R.data(), x.data(), W.data(), N, IC, OC); };
    run_gradcheck(loss, backward, {{"dweight", &W, &dW, true}});
  }
}

TEST_CASE("ops/gradcheck: backward matches finite differences, in place equals out of place") {
  const int B = 2, T = 5, H = 3, R = 8, pos0 = 3;
  const double theta = 10000.0;
  const std::size_t n = static_cast<std::size_t>(B) * T * H * R;
  vec x = randn(n, 1), P = randn(n, 2), out(n), dx(n);
  auto loss = [&] {
    rope_forward(out.data(), x.data(), B, T, H, R, pos0, theta);
    return dot(out.data(), P.data(), n);
  };
  auto backward = [&] { rope_backward(dx.data(), P.data(), B, T, H, R, pos0, theta); };
  run_gradcheck(loss, backward, {{"dinp", &x, &dx, false}});

  // Independent forward check of one pair: b=1, t=2, h=1, pair i=1 rotated by (pos0 + t) * theta^(-2/R).
  loss();
  const std::size_t off = ((1 * T + 2) * H + 1) * R + 2;
  const double a = (pos0 + 2) * std::pow(theta, -2.0 * 1 / R);
  CHECK(out[off] == doctest::Approx(x[off] * std::cos(a) - x[off + 1] * std::sin(a)).epsilon(1e-12));
  CHECK(out[off + 1] == doctest::Approx(x[off] * std::sin(a) + x[off + 1] * std::cos(a)).epsilon(1e-12));

  // In place (out == inp, dinp == dout) gives the same bits as separate buffers.
  vec y = x, g = P;
  rope_forward(y.data(), y.data(), B, T, H, R, pos0, theta);
  rope_backward(g.data(), g.data(), B, T, H, R, pos0, theta);
  CHECK(y == out);
  CHECK(g == dx);
}

TEST_CASE("ops/gradcheck: backward matches finite differences") {
  const long n = 40;
  vec a = randn(n, 1, 2.0), b = randn(n, 2), R = randn(n, 3), out(n), da(n), db(n);
  a[0] = -30.0;  // far tail of the sigmoid: silu -> 0 smoothly, no NaN
  a[1] = 30.0;
  auto loss = [&] {
    swiglu_forward(out.data(), a.data(), b.data(), n);
    return dot(out.data(), R.data(), n);
  };
  auto backward = [&] { swiglu_backward(da.data(), db.data(), R.data(), a.data(), b.data(), n); };
  run_gradcheck(loss, backward, {{"da", &a, &da, false}, {"db", &b, &db, false}});
  CHECK(out[5] == doctest::Approx(a[5] / (1.0 + std::exp(-a[5])) * b[5]).epsilon(1e-12));

  // Saturated gates (checked apart from the finite differences: out ~ 800 b would raise |L| and with it the
  // rounding noise eps |L| / h of every numeric gradient). e^-a overflows to inf, or the vectorised exp clamps it
  // to a huge finite value: either way silu(-800) = 0 and silu(800) = 800, with no NaN, in double and in float.
  const double big[4] = {-800.0, 800.0, 0.5, -0.25}, g[4] = {1.0, 1.0, 1.0, 1.0};
  double o[4], d1[4], d2[4];
  swiglu_forward(o, big, big, 4);  // b = a, so out = silu(a) * a
  swiglu_backward(d1, d2, g, big, big, 4);
  CHECK(std::fabs(o[0]) < 1e-300);
  CHECK(o[1] == 800.0 * 800.0);
  CHECK(std::fabs(d1[0]) < 1e-300);  // d/da of silu(a) * b vanishes in the left tail
  CHECK(d1[1] == 800.0);             // = b * sigmoid(800) * (1 + 800 (1 - sigmoid(800))) = b
  CHECK(d2[1] == 800.0);             // = silu(800)
  const float bigf[2] = {-100.0f, 100.0f}, gf[2] = {1.0f, 1.0f};
  float of[2], df1[2], df2[2];
  swiglu_forward(of, bigf, bigf, 2);
  swiglu_backward(df1, df2, gf, bigf, bigf, 2);
  for (float x : {of[0], of[1], df1[0], df1[1], df2[0], df2[1]}) CHECK(std::isfinite(x));
  CHECK(of[1] == 10000.0f);
}

TEST_CASE("ops/gradcheck: backward matches finite differences, with masked rows") {
  const int N = 7, V = 11;
  const std::vector<int> targets = {3, -1, 0, 10, 5, -1, 3};
  vec logits = randn(N * V, 1, 2.0), dl = randn(N, 2), losses(N), lse(N), dlogits(N * V);
  auto loss = [&] {
    cross_entropy_forward(losses.data(), lse.data(), logits.data(), targets.data(), N, V);
    return dot(losses.data(), dl.data(), N);
  };
  loss();
  auto backward = [&] {
    cross_entropy_backward(dlogits.data(), dl.data(), logits.data(), lse.data(), targets.data(), N, V);
  };
  run_gradcheck(loss, backward, {{"dlogits", &logits, &dlogits, false}});
  // Forward against the definition -log softmax(logits)[target], computed directly.
  for (int n = 0; n < N; n++) {
    if (targets[n] < 0) {
      CHECK(losses[n] == 0.0);
      continue;
    }
    double z = 0;
    for (int v = 0; v < V; v++) z += std::exp(logits[n * V + v]);
    CHECK(losses[n] == doctest::Approx(-std::log(std::exp(logits[n * V + targets[n]]) / z)).epsilon(1e-12));
    CHECK(lse[n] == doctest::Approx(std::log(z)).epsilon(1e-12));
  }
}

TEST_CASE("ops/gradcheck: backward matches finite differences, add_inplace") {
  const long n = 24;
  vec a = randn(n, 1), b = randn(n, 2), R = randn(n, 3), out(n), da(n), db(n);
  auto loss = [&] {
    residual_forward(out.data(), a.data(), b.data(), n);
    return dot(out.data(), R.data(), n);
  };
  auto backward = [&] { residual_backward(da.data(), db.data(), R.data(), n); };
  run_gradcheck(loss, backward, {{"da", &a, &da, false}, {"db", &b, &db, false}});
  // nullptr for either gradient is allowed.
  vec da2(n, 7.0);
  residual_backward(da2.data(), static_cast<double*>(nullptr), R.data(), n);
  CHECK(da2 == R);
  vec acc = a;
  add_inplace(acc.data(), b.data(), n);
  for (long i = 0; i < n; i++) CHECK(acc[i] == a[i] + b[i]);
}
