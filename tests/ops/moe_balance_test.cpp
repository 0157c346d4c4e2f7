// tests/ops/moe_balance_test.cpp — MoE load balancing (tinyds/ops/moe_balance.h): expert load, MaxVio, the
// aux-loss-free bias update (and an experiment showing it balances a skewed router), and the sequence-wise and
// expert-level balance losses with their backward.
//
// Shapes: N = B*T tokens, E experts, K slots per token.
// Expected values are worked by hand in the comments (small cases) or follow from the definitions (perfect
// balance gives L = alpha, DESIGN 4.3).
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "tests/util/ops_util.h"
#include "tinyds/core/error.h"
#include "tinyds/ops/moe_balance.h"
#include "tinyds/ops/moe_router.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;

// The loss values below are a handful of double operations on O(1) numbers: they agree with the hand-worked
// values to ~1e-16 relative; 1e-14 leaves room for the summation order, and a wrong formula misses by O(1).
constexpr double kTol = 1e-14;

TEST_CASE("ops/moe_balance: expert load and MaxVio") {
  // 4 tokens, K = 2, E = 4: expert 0 chosen 4 times, 1 never, 2 and 3 twice each.
  const std::vector<int> idx = {0, 2, 0, 3, 2, 0, 3, 0};
  std::vector<int> load(4);
  moe_expert_load(load.data(), idx.data(), 4, 2, 4);
  CHECK(load == std::vector<int>{4, 0, 2, 2});
  // mean 2, max 4: MaxVio = 4 / 2 - 1 = 1.
  CHECK(moe_maxvio(load.data(), 4) == 1.0);
  const std::vector<int> uniform = {5, 5, 5, 5, 5, 5};
  CHECK(moe_maxvio(uniform.data(), 6) == 0.0);
  const std::vector<int> none = {0, 0, 0};
  CHECK(moe_maxvio(none.data(), 3) == 0.0);
  // {1, 2, 4}: mean 7/3, MaxVio = 4 * 3 / 7 - 1 = 5/7.
  const std::vector<int> odd = {1, 2, 4};
  CHECK(moe_maxvio(odd.data(), 3) == doctest::Approx(5.0 / 7.0).epsilon(1e-15));
  const std::vector<int> bad = {0, 4};
  CHECK_THROWS_AS(moe_expert_load(load.data(), bad.data(), 1, 2, 4), Error);  // expert 4 of E = 4
}

TEST_CASE("ops/moe_balance: update_bias moves each expert by gamma toward the mean load, sign(0) = 0") {
  const double g = 0.25;  // a power of two: every expected value below is exact
  vec b = {1.0, 1.0, 1.0, 1.0};
  const std::vector<int> load = {4, 0, 2, 2};  // mean 2: over, under, exactly average (twice)
  moe_update_bias(b.data(), load.data(), 4, g);
  CHECK(b == vec{0.75, 1.25, 1.0, 1.0});
  // Mean 1.5 is not an integer: nobody is average.
  vec b2 = {0.0, 0.0};
  const std::vector<int> load2 = {1, 2};
  moe_update_bias(b2.data(), load2.data(), 2, g);
  CHECK(b2 == vec{0.25, -0.25});
  // float: mean 7/3 (not representable) still gives the exact signs of {2, 3, 2} vs 7/3.
  std::vector<float> bf = {0.f, 0.f, 0.f};
  const std::vector<int> load3 = {2, 3, 2};
  moe_update_bias(bf.data(), load3.data(), 3, 0.5f);
  CHECK(bf == std::vector<float>{0.5f, -0.5f, 0.5f});
}

TEST_CASE("ops/moe_balance: sequence-wise loss (V3 Eq. 17-20) values and backward") {
  const double alpha = 0.5;
  SUBCASE("hand-worked values") {
    // B = 1, T = 2, E = 2, K = 1; both tokens choose expert 0; s = {0.75, 0.25} and {0.5, 0.5} (rows sum to 1).
    // f = {2 / (1 * 2) * 2, 0} = {2, 0};  P_0 = (0.75 + 0.5) / 2 = 0.625;  L = alpha * 2 * 0.625 = 1.25 alpha.
    const vec s = {0.75, 0.25, 0.5, 0.5};
    const std::vector<int> idx = {0, 0};
    vec f(2);
    const double L = moe_seqaux_forward(f.data(), s.data(), idx.data(), 1, 2, 2, 1, alpha);
    CHECK(L == doctest::Approx(1.25 * alpha).epsilon(kTol));
    CHECK(f == vec{2.0, 0.0});
    // Scores are normalised per token (s' = s / sum s), so scaling a token's row changes nothing.
    const vec s2 = {1.5, 0.5, 0.1, 0.1};
    const double L2 = moe_seqaux_forward(f.data(), s2.data(), idx.data(), 1, 2, 2, 1, alpha);
    CHECK(L2 == doctest::Approx(1.25 * alpha).epsilon(kTol));
  }
  SUBCASE("perfect balance gives alpha, and the batch value is the mean over sequences") {
    // B = 2, T = 4, E = 4, K = 2: in each sequence every expert is chosen T K / E = 2 times: f_i = 1; with equal
    // scores in a row P_i = 1/E, so sum_i f_i P_i = 1 and L = alpha.
    const std::vector<int> idx = {0, 1, 2, 3, 0, 1, 2, 3, 3, 2, 1, 0, 1, 3, 0, 2};
    const vec s(8 * 4, 0.3);
    vec f(2 * 4);
    const double L = moe_seqaux_forward(f.data(), s.data(), idx.data(), 2, 4, 4, 2, alpha);
    CHECK(L == doctest::Approx(alpha).epsilon(kTol));
    // Unequal sequences: the loss of B = 2 is the mean of each sequence's loss alone.
    const vec r = randn(8 * 4, 1);
    vec sr(8 * 4);
    for (std::size_t i = 0; i < sr.size(); i++) sr[i] = 1.0 / (1.0 + std::exp(-r[i]));
    const std::vector<int> skew = {0, 1, 0, 1, 0, 2, 0, 3, 3, 2, 1, 0, 1, 3, 0, 2};
    const double both = moe_seqaux_forward(f.data(), sr.data(), skew.data(), 2, 4, 4, 2, alpha);
    const double l0 = moe_seqaux_forward(f.data(), sr.data(), skew.data(), 1, 4, 4, 2, alpha);
    const double l1 = moe_seqaux_forward(f.data(), sr.data() + 16, skew.data() + 8, 1, 4, 4, 2, alpha);
    CHECK(both == doctest::Approx((l0 + l1) / 2).epsilon(kTol));
    CHECK(l0 > l1);  // sequence 0 is the imbalanced one
  }
  SUBCASE("backward matches finite differences") {
    const int B = 3, T = 5, E = 6, K = 2, N = B * T;
    const double dloss = 0.7;  // the caller's dL_total/dL: must scale the gradient
    const vec logits = randn(N * E, 2);
    vec s(N * E), w(N * K), ds(N * E), f(B * E);
    std::vector<int> idx(N * K);
    moe_router_forward<double>(s.data(), idx.data(), w.data(), logits.data(), nullptr, N, E, K, ScoreFunc::sigmoid,
                               1.0, 1, 1);
    // idx stays fixed while s is perturbed: f is a count, a constant of the loss (V3: gradient through P only).
    auto loss = [&] { return dloss * moe_seqaux_forward(f.data(), s.data(), idx.data(), B, T, E, K, alpha); };
    loss();
    auto backward = [&] { moe_seqaux_backward(ds.data(), dloss, f.data(), s.data(), B, T, E, alpha); };
    run_gradcheck(loss, backward, {{"dscores", &s, &ds, false}});
  }
}

TEST_CASE("ops/moe_balance: expert-level aux loss (DeepSeekMoE) values and backward") {
  const double alpha = 0.5;
  // Each sequence is fully imbalanced but the batch is balanced: sequence 0 sends all 4 tokens to expert 0 with
  // s = {0.9, 0.1}, sequence 1 all to expert 1 with s = {0.1, 0.9} (E = 2, K = 1, T = 4).
  //   sequence-wise: per sequence f = {2, 0}, P_0 = 0.9: 1.8 alpha each, mean 1.8 alpha.
  //   expert-level over the batch: f = {1, 1}, P = {0.5, 0.5}: 1.0 alpha.
  const std::vector<int> idx = {0, 0, 0, 0, 1, 1, 1, 1};
  vec s(8 * 2);
  for (int t = 0; t < 8; t++) {
    s[t * 2 + 0] = t < 4 ? 0.9 : 0.1;
    s[t * 2 + 1] = t < 4 ? 0.1 : 0.9;
  }
  vec f(2 * 2);
  const double seq = moe_seqaux_forward(f.data(), s.data(), idx.data(), 2, 4, 2, 1, alpha);
  CHECK(seq == doctest::Approx(1.8 * alpha).epsilon(kTol));
  const double batch = moe_aux_forward(f.data(), s.data(), idx.data(), 8, 2, 1, alpha);
  CHECK(batch == doctest::Approx(1.0 * alpha).epsilon(kTol));

  // Softmax scores (DeepSeekMoE's): against the formula written out, then the backward.
  const int N = 12, E = 5, K = 2;
  const double dloss = 1.3;
  const vec logits = randn(N * E, 3);
  vec sm(N * E), w(N * K), ds(N * E), fa(E);
  std::vector<int> ids(N * K);
  moe_router_forward<double>(sm.data(), ids.data(), w.data(), logits.data(), nullptr, N, E, K, ScoreFunc::softmax,
                             1.0, 1, 1);
  double ref = 0;  // alpha * sum_i [E / (K N) * count_i] * [(1/N) sum_t s_ti]   (softmax rows already sum to 1)
  for (int i = 0; i < E; i++) {
    double count = 0, P = 0;
    for (int v : ids) count += v == i;
    for (int t = 0; t < N; t++) P += sm[t * E + i] / N;
    ref += double(E) / (K * N) * count * P;
  }
  const double L = moe_aux_forward(fa.data(), sm.data(), ids.data(), N, E, K, alpha);
  CHECK(L == doctest::Approx(alpha * ref).epsilon(kTol));
  auto loss = [&] { return dloss * moe_aux_forward(fa.data(), sm.data(), ids.data(), N, E, K, alpha); };
  loss();
  auto backward = [&] { moe_aux_backward(ds.data(), dloss, fa.data(), sm.data(), N, E, alpha); };
  run_gradcheck(loss, backward, {{"dscores", &sm, &ds, false}});
}

// The experiment of Loss-Free Balancing (arXiv 2408.15664) in miniature: a router whose fixed logits strongly favour
// experts 0 and 1 of 16 (+4 on their logits, N(0, 1) noise on all), N = 512 tokens, top-2, sigmoid scores.
// Without balancing nearly every token picks experts 0 and 1: MaxVio ~6.8 (7 would be all of them: 512/64 - 1).
// With update_bias after every step the bias pushes tokens to the other experts.
// Measured (float; this seed and 7 others): gamma 0.002 brings MaxVio from 6.8 to 2.2 after 50 steps and to
// 0.03..0.13 after 100..200 steps (max over steps 151..200: <= 0.125 for all 8 seeds); without balancing it stays
// at 6.8. Thresholds: < 0.2 with balancing, > 2 without. A larger step leaves a larger residual imbalance: the
// favoured experts' scores are packed near 1 (sigmoid(4 +- 1)), so one bias step moves a whole block of tokens;
// gamma 0.005 ends at 0.05..0.31 and gamma 0.01 at 0.45 (the sign update settles into a cycle of amplitude ~gamma).
TEST_CASE("ops/moe_balance: the aux-loss-free bias update balances a skewed router (experiment)") {
  const int N = 512, E = 16, K = 2, steps = 200;
  const float gamma = 0.002f;
  std::vector<float> logits = to_float(randn(static_cast<std::size_t>(N) * E, 40));
  for (int n = 0; n < N; n++) logits[n * E + 0] += 4.f, logits[n * E + 1] += 4.f;
  std::vector<float> s(N * E), w(N * K), bias(E);
  std::vector<int> idx(N * K), load(E);
  auto run = [&](bool balance) {
    std::fill(bias.begin(), bias.end(), 0.f);
    std::vector<double> vio;  // MaxVio of the routing at steps 0..steps
    for (int step = 0; step <= steps; step++) {
      moe_router_forward(s.data(), idx.data(), w.data(), logits.data(), bias.data(), N, E, K, ScoreFunc::sigmoid,
                         1.f, 1, 1);
      moe_expert_load(load.data(), idx.data(), N, K, E);
      vio.push_back(moe_maxvio(load.data(), E));
      if (balance) moe_update_bias(bias.data(), load.data(), E, gamma);
    }
    return vio;
  };
  const std::vector<double> off = run(false), on = run(true);
  const double last50 = *std::max_element(on.end() - 50, on.end());
  if (verbose())
    MESSAGE("MaxVio: start ", on.front(), ", after 50 steps ", on[50], ", after ", steps, " ", on.back(),
            " (max of the last 50 ", last50, "); without balancing ", off.back());
  CHECK(on.front() == off.front());
  CHECK(*std::min_element(off.begin(), off.end()) > 2.0);
  CHECK(on.back() < 0.2);
  CHECK(last50 < 0.2);
  CHECK(bias[0] < 0.f);  // the overloaded experts were pushed down
  CHECK(bias[1] < 0.f);
}
