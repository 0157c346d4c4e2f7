// tests/ops/moe_router_test.cpp — the MoE router (tinyds/ops/moe_router.h): scores, (group-limited) top-K choice,
// normalised weights, and the backward through the weights with the routing held fixed.
//
// Shapes: N tokens, E experts, K experts per token, G experts per group.
// Checks of the choice are written as properties (every chosen biased score >= every eligible unchosen one, chosen
// groups are the best ones by the test's own group scores), not as a second copy of the selection code.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "tests/util/ops_util.h"
#include "tinyds/core/error.h"
#include "tinyds/ops/moe_router.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;

namespace {

struct Routing {
  int E, K, n_group, topk_group;
  ScoreFunc func;
};

// s (E) by the definitions, written independently of the op: sigmoid, or softmax without max subtraction
// (the logits here are O(1), so exp cannot overflow).
vec ref_scores(const double* x, int E, ScoreFunc func) {
  vec s(E);
  double sum = 0;
  for (int e = 0; e < E; e++) {
    s[e] = func == ScoreFunc::sigmoid ? 1.0 / (1.0 + std::exp(-x[e])) : std::exp(x[e]);
    sum += s[e];
  }
  if (func == ScoreFunc::softmax)
    for (auto& v : s) v /= sum;
  return s;
}

// Group scores (n_group): sum of the two largest biased values of each group, by sorting a copy.
vec group_scores(const vec& biased, int n_group) {
  const int G = static_cast<int>(biased.size()) / n_group;
  vec gs(n_group);
  for (int g = 0; g < n_group; g++) {
    vec v(biased.begin() + g * G, biased.begin() + (g + 1) * G);
    std::sort(v.rbegin(), v.rend());
    gs[g] = v[0] + (G > 1 ? v[1] : 0.0);
  }
  return gs;
}

// eligible[e]: expert e is in one of the topk_group best groups (all true without groups).
std::vector<bool> eligible_experts(const vec& biased, const Routing& r) {
  std::vector<bool> ok(r.E, true);
  if (r.n_group <= 1) return ok;
  const vec gs = group_scores(biased, r.n_group);
  vec sorted = gs;
  std::sort(sorted.rbegin(), sorted.rend());
  const int G = r.E / r.n_group;
  for (int e = 0; e < r.E; e++) ok[e] = gs[e / G] >= sorted[r.topk_group - 1];
  return ok;
}

// The smallest margin of one token's choice: between the topk_group-th and next group score, and between the K-th
// and (K+1)-th eligible biased score. A perturbation that moves every margin by less than this keeps the choice.
double selection_gap(const vec& biased, const Routing& r) {
  double gap = std::numeric_limits<double>::infinity();
  if (r.n_group > 1) {
    vec gs = group_scores(biased, r.n_group);
    std::sort(gs.rbegin(), gs.rend());
    if (r.topk_group < r.n_group) gap = gs[r.topk_group - 1] - gs[r.topk_group];
  }
  const std::vector<bool> ok = eligible_experts(biased, r);
  vec v;
  for (int e = 0; e < r.E; e++)
    if (ok[e]) v.push_back(biased[e]);
  std::sort(v.rbegin(), v.rend());
  if (static_cast<int>(v.size()) > r.K) gap = std::min(gap, v[r.K - 1] - v[r.K]);
  return gap;
}

// Logits (N, E) whose routing has a margin >= min_gap for every token: each token's row is redrawn (from the next
// draws of its own stream) until it does. Deterministic.
vec separated_logits(int N, const Routing& r, const vec& bias, uint64_t stream, double min_gap) {
  vec x(static_cast<std::size_t>(N) * r.E);
  Rng rng(99, stream);
  for (int n = 0; n < N; n++) {
    for (int attempt = 0;; attempt++) {
      REQUIRE(attempt < 1000);
      double* row = x.data() + static_cast<long>(n) * r.E;
      for (int e = 0; e < r.E; e++) row[e] = 1.5 * rng.normal();
      vec b = ref_scores(row, r.E, r.func);
      for (int e = 0; e < r.E; e++) b[e] += bias[e];
      if (selection_gap(b, r) >= min_gap) break;
    }
  }
  return x;
}

// Checks one token's choice by its defining properties: K distinct experts, best first, all eligible, and none
// beaten by an eligible unchosen expert.
void check_choice(const int* idx, const vec& biased, const Routing& r) {
  const std::vector<bool> ok = eligible_experts(biased, r);
  std::vector<bool> chosen(r.E, false);
  for (int k = 0; k < r.K; k++) {
    REQUIRE((idx[k] >= 0 && idx[k] < r.E));
    CHECK_FALSE(chosen[idx[k]]);
    chosen[idx[k]] = true;
    CHECK(ok[idx[k]]);
    if (k > 0) CHECK(biased[idx[k - 1]] >= biased[idx[k]]);
  }
  for (int k = 0; k < r.K; k++)
    for (int e = 0; e < r.E; e++)
      if (ok[e] && !chosen[e]) CHECK(biased[idx[k]] >= biased[e]);
}

// Finite-difference check of moe_router_backward with L = sum(topk_w * R1) [+ sum(scores * R2) when with_extra].
// Why the routing cannot flip: every logit row has margin >= 1e-3 (separated_logits), and a central difference
// moves one logit by h = 1e-5 (tests/util/gradcheck.h). Each score moves by at most h/4 (|d sigmoid/dx| <= 1/4, and
// |d softmax_j / dx_i| = s_j |[i==j] - s_i| <= 1/4), so a difference of two biased scores moves by <= h/2 and of
// two group scores (2 terms each) by <= h: 100x below the margin. The loss also asserts it: every perturbed
// forward must reproduce the unperturbed topk_idx (flips counts the ones that did not).
void router_gradcheck(const Routing& r, bool with_extra) {
  const int N = 6;
  const double route_scale = 2.5;  // V3's value: a wrong scale in backward would miss by a factor
  const vec bias = randn(r.E, 7, 0.05);
  vec logits = separated_logits(N, r, bias, 3, 1e-3);
  const vec R1 = randn(N * r.K, 4), R2 = randn(N * r.E, 5);
  vec scores(N * r.E), w(N * r.K), dlogits(N * r.E);
  std::vector<int> idx(N * r.K), idx0;
  int flips = 0;
  auto loss = [&] {
    moe_router_forward(scores.data(), idx.data(), w.data(), logits.data(), bias.data(), N, r.E, r.K, r.func,
                       route_scale, r.n_group, r.topk_group);
    if (!idx0.empty() && idx != idx0) flips++;
    return dot(w.data(), R1.data(), w.size()) + (with_extra ? dot(scores.data(), R2.data(), scores.size()) : 0.0);
  };
  loss();
  idx0 = idx;
  auto backward = [&] {
    moe_router_backward(dlogits.data(), R1.data(), with_extra ? R2.data() : nullptr, scores.data(), idx.data(), N,
                        r.E, r.K, r.func, route_scale);
  };
  run_gradcheck(loss, backward, {{"dlogits", &logits, &dlogits, false}});
  CHECK(flips == 0);
  // The unchosen experts' logits get a gradient only through the scores (sigmoid: none at all without extra).
  if (r.func == ScoreFunc::sigmoid && !with_extra)
    for (int n = 0; n < N; n++)
      for (int e = 0; e < r.E; e++)
        if (std::find(&idx[n * r.K], &idx[n * r.K] + r.K, e) == &idx[n * r.K] + r.K)
          CHECK(dlogits[n * r.E + e] == 0.0);
}

}  // namespace

TEST_CASE("ops/moe_router: sigmoid backward matches finite differences with the routing held fixed") {
  SUBCASE("top-2 of 8, with the extra score gradient") { router_gradcheck({8, 2, 1, 1, ScoreFunc::sigmoid}, true); }
  SUBCASE("top-2 of 8, weights only") { router_gradcheck({8, 2, 1, 1, ScoreFunc::sigmoid}, false); }
  SUBCASE("group-limited: 4 groups of 3, best 2 groups, top-3") {
    router_gradcheck({12, 3, 4, 2, ScoreFunc::sigmoid}, true);
  }
}

TEST_CASE("ops/moe_router: softmax backward matches finite differences with the routing held fixed") {
  SUBCASE("top-2 of 8, with the extra score gradient") { router_gradcheck({8, 2, 1, 1, ScoreFunc::softmax}, true); }
  SUBCASE("top-2 of 8, weights only") { router_gradcheck({8, 2, 1, 1, ScoreFunc::softmax}, false); }
  SUBCASE("group-limited: 4 groups of 3, best 2 groups, top-3") {
    router_gradcheck({12, 3, 4, 2, ScoreFunc::softmax}, true);
  }
}

TEST_CASE("ops/moe_router: scores, choice and weights match their definitions (double and float)") {
  const int N = 40;
  for (ScoreFunc func : {ScoreFunc::sigmoid, ScoreFunc::softmax}) {
    for (int n_group : {1, 4}) {
      const Routing r{16, 4, n_group, 2, func};
      INFO(score_func_name(func), " n_group ", n_group);
      const double route_scale = 2.5;
      const vec logits = randn(N * r.E, 11, 2.0), bias = randn(r.E, 12, 0.1);
      vec scores(N * r.E), w(N * r.K);
      std::vector<int> idx(N * r.K);
      moe_router_forward(scores.data(), idx.data(), w.data(), logits.data(), bias.data(), N, r.E, r.K, func,
                         route_scale, r.n_group, r.topk_group);
      for (int n = 0; n < N; n++) {
        const vec s = ref_scores(&logits[n * r.E], r.E, func);
        vec biased = s;
        for (int e = 0; e < r.E; e++) biased[e] += bias[e];
        double S = 0;
        for (int k = 0; k < r.K; k++) S += s[idx[n * r.K + k]];
        // 1e-12 relative: double rounding of a few exps and divisions is ~1e-16; a wrong formula misses by O(1).
        for (int e = 0; e < r.E; e++) CHECK(scores[n * r.E + e] == doctest::Approx(s[e]).epsilon(1e-12));
        check_choice(&idx[n * r.K], biased, r);
        for (int k = 0; k < r.K; k++)  // V3 Eq. 13: unbiased scores, normalised over the chosen, times the scale
          CHECK(w[n * r.K + k] == doctest::Approx(route_scale * s[idx[n * r.K + k]] / S).epsilon(1e-12));
      }
      // The float instantiation agrees (same choice; weights to float rounding, 1e-5 relative >> 6e-8 eps).
      std::vector<float> sf(N * r.E), wf(N * r.K);
      std::vector<int> idxf(N * r.K);
      moe_router_forward(sf.data(), idxf.data(), wf.data(), to_float(logits).data(), to_float(bias).data(), N, r.E,
                         r.K, func, 2.5f, r.n_group, r.topk_group);
      CHECK(idxf == idx);
      CHECK(max_rel_diff(wf, w) < 1e-5);
      CHECK(max_rel_diff(sf, scores) < 1e-5);
    }
  }
}

TEST_CASE("ops/moe_router: ties go to the lower expert index, for experts and for groups") {
  const int E = 8, K = 3;
  vec scores(E), w(K);
  std::vector<int> idx(K);
  // All logits equal: every score ties, so experts 0, 1, 2 win.
  const vec flat(E, 0.3);
  // (A bare nullptr cannot deduce `real`: calls without a bias name the type, moe_router_forward<double>.)
  moe_router_forward<double>(scores.data(), idx.data(), w.data(), flat.data(), nullptr, 1, E, K, ScoreFunc::sigmoid,
                             1.0, 1, 1);
  CHECK(idx == std::vector<int>{0, 1, 2});
  for (double wk : w) CHECK(wk == doctest::Approx(1.0 / K).epsilon(1e-15));
  // Same with 4 groups of 2 and 2 eligible groups: groups 0 and 1 tie with the rest and win.
  moe_router_forward<double>(scores.data(), idx.data(), w.data(), flat.data(), nullptr, 1, E, K, ScoreFunc::sigmoid,
                             1.0, 4, 2);
  CHECK(idx == std::vector<int>{0, 1, 2});
  // A tie below a clear winner: logits {0, 1, 2, 2, 2, 0, 0, 0}: 2, 3, 4 tie at the top, K = 2 takes 2 and 3.
  const vec x = {0, 1, 2, 2, 2, 0, 0, 0};
  std::vector<int> idx2(2);
  moe_router_forward<double>(scores.data(), idx2.data(), w.data(), x.data(), nullptr, 1, E, 2, ScoreFunc::softmax, 1.0,
                             1, 1);
  CHECK(idx2 == std::vector<int>{2, 3});
  // The bias breaks the tie the other way: +0.01 on expert 4 puts it first.
  vec b(E, 0.0);
  b[4] = 0.01;
  moe_router_forward(scores.data(), idx2.data(), w.data(), x.data(), b.data(), 1, E, 2, ScoreFunc::softmax, 1.0, 1, 1);
  CHECK(idx2 == std::vector<int>{4, 2});
}

TEST_CASE("ops/moe_router: the bias changes which experts are chosen, never the weight formula") {
  const int N = 64, E = 16, K = 2;
  const double rs = 2.5;
  const vec logits = randn(N * E, 21, 1.5), zero(E, 0.0), bias = randn(E, 22, 0.3);
  vec s0(N * E), w0(N * K), s1(N * E), w1(N * K);
  std::vector<int> i0(N * K), i1(N * K);
  moe_router_forward(s0.data(), i0.data(), w0.data(), logits.data(), zero.data(), N, E, K, ScoreFunc::sigmoid, rs, 1,
                     1);
  moe_router_forward(s1.data(), i1.data(), w1.data(), logits.data(), bias.data(), N, E, K, ScoreFunc::sigmoid, rs, 1,
                     1);
  CHECK(s0 == s1);  // the scores never see the bias
  int same = 0, changed = 0;
  for (int n = 0; n < N; n++) {
    std::map<int, double> m0, m1;  // expert -> weight (the slot order may differ)
    for (int k = 0; k < K; k++) {
      m0[i0[n * K + k]] = w0[n * K + k];
      m1[i1[n * K + k]] = w1[n * K + k];
    }
    bool equal_sets = true;
    for (const auto& kv : m0) equal_sets = equal_sets && m1.count(kv.first);
    if (!equal_sets) {
      changed++;
      continue;
    }
    same++;
    // Same chosen set -> same weights, bit for bit: the same two scores are summed (a + b == b + a exactly in
    // IEEE arithmetic, whatever the slot order), so nothing of the bias can reach the weights.
    for (const auto& kv : m0) CHECK(m1[kv.first] == kv.second);
  }
  // Both cases occurred, so the test saw the bias matter and not matter.
  CHECK(same > 0);
  CHECK(changed > 0);

  // A large bias on expert j forces it into every token's top-K, and its weight is still its unbiased normalised
  // score: with the bias in the formula it would be (s_j + 10) / (S + 10), close to 1 instead.
  const int j = 5;
  vec big(E, 0.0);
  big[j] = 10.0;
  moe_router_forward(s1.data(), i1.data(), w1.data(), logits.data(), big.data(), N, E, K, ScoreFunc::sigmoid, rs, 1,
                     1);
  for (int n = 0; n < N; n++) {
    CHECK(i1[n * K] == j);  // first: its biased score is the largest
    const double S = s1[n * E + i1[n * K]] + s1[n * E + i1[n * K + 1]];
    CHECK(w1[n * K] == doctest::Approx(rs * s1[n * E + j] / S).epsilon(1e-14));
  }
}

TEST_CASE("ops/moe_router: group-limited routing never picks outside the best groups") {
  const int N = 128;
  const Routing r{16, 4, 4, 2, ScoreFunc::sigmoid};  // 4 groups of 4 experts, best 2 groups, top-4
  const vec logits = randn(N * r.E, 31, 2.0), bias = randn(r.E, 32, 0.1);
  vec s(N * r.E), w(N * r.K);
  std::vector<int> idx(N * r.K), free_idx(N * r.K);
  moe_router_forward(s.data(), idx.data(), w.data(), logits.data(), bias.data(), N, r.E, r.K, r.func, 1.0, r.n_group,
                     r.topk_group);
  moe_router_forward(s.data(), free_idx.data(), w.data(), logits.data(), bias.data(), N, r.E, r.K, r.func, 1.0, 1, 1);
  int differs = 0;
  for (int n = 0; n < N; n++) {
    vec biased(&s[n * r.E], &s[n * r.E] + r.E);
    for (int e = 0; e < r.E; e++) biased[e] += bias[e];
    check_choice(&idx[n * r.K], biased, r);  // includes: every chosen expert lies in a best group
    std::vector<int> a(&idx[n * r.K], &idx[n * r.K] + r.K), b(&free_idx[n * r.K], &free_idx[n * r.K] + r.K);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    differs += a != b;
  }
  // The group limit actually changed some choices (else the test above would pass vacuously).
  CHECK(differs > 0);
}

TEST_CASE("ops/moe_router: bad arguments are errors that name what was wrong") {
  const int E = 8;
  vec x(2 * E, 0.1), s(2 * E), w(2 * E);
  std::vector<int> idx(2 * E);
  auto fwd = [&](int K, int n_group, int topk_group) {
    moe_router_forward<double>(s.data(), idx.data(), w.data(), x.data(), nullptr, 2, E, K, ScoreFunc::sigmoid, 1.0,
                               n_group, topk_group);
  };
  CHECK_THROWS_AS(fwd(9, 1, 1), Error);   // K > E
  CHECK_THROWS_AS(fwd(0, 1, 1), Error);   // K < 1
  CHECK_THROWS_AS(fwd(2, 3, 1), Error);   // 3 groups do not divide 8 experts
  CHECK_THROWS_AS(fwd(2, 4, 5), Error);   // topk_group > n_group
  CHECK_THROWS_AS(fwd(5, 4, 2), Error);   // 5 experts from 2 groups of 2
  CHECK_NOTHROW(fwd(4, 4, 2));
  x[1 * E + 3] = std::numeric_limits<double>::quiet_NaN();
  std::string msg;
  try {
    fwd(2, 1, 1);
  } catch (const Error& e) {
    msg = e.what();
  }
  CHECK(msg.find("logits[1, 3]") != std::string::npos);
  CHECK_THROWS_AS(parse_score_func("relu"), Error);
  CHECK(parse_score_func(score_func_name(ScoreFunc::softmax)) == ScoreFunc::softmax);
}
