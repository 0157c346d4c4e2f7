// tests/train/pass_at_k_test.cpp — the unbiased pass@k estimator (train/pass_at_k.h) against hand-computed values
// and a brute-force enumeration of k-subsets, and the sampled evaluation's bookkeeping.
//
// Shapes: n samples of which c are right, k drawn; nano preset (V 128) for the sampled evaluation.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tests/util/error_util.h"
#include "tinyds/data/generator.h"
#include "tinyds/train/evaluate.h"
#include "tinyds/train/pass_at_k.h"
#include "tinyds/train/trainer.h"

using namespace tinyds;
using tinyds_test::error_of;
using tinyds_test::has;

namespace {

// The definition itself: the share of the C(n, k) k-subsets of n samples (the first c right) that hold at least
// one right sample, by enumerating every subset as a bit mask.
double brute_force_pass_at_k(int n, int c, int k) {
  long hit = 0, total = 0;
  for (unsigned mask = 0; mask < (1u << n); mask++) {
    if (__builtin_popcount(mask) != k) continue;
    total++;
    hit += (mask & ((1u << c) - 1)) != 0;  // bits 0..c-1 are the right samples
  }
  return static_cast<double>(hit) / total;
}

}  // namespace

TEST_CASE("train/pass_at_k: the estimator equals hand-computed binomial ratios") {
  // 1 - C(n-c, k) / C(n, k) worked by hand; 1e-15: a product of at most 3 doubles near 1 rounds at ~1e-16.
  CHECK(pass_at_k(1, 1, 1) == 1.0);
  CHECK(pass_at_k(1, 0, 1) == 0.0);
  CHECK(std::fabs(pass_at_k(2, 1, 1) - 0.5) < 1e-15);          // c/n
  CHECK(pass_at_k(2, 1, 2) == 1.0);                              // n - c < k: both drawn
  CHECK(std::fabs(pass_at_k(5, 2, 2) - (1 - 3.0 / 10)) < 1e-15);  // C(3,2)/C(5,2) = 3/10
  CHECK(std::fabs(pass_at_k(4, 1, 2) - (1 - 3.0 / 6)) < 1e-15);   // C(3,2)/C(4,2) = 3/6
  CHECK(std::fabs(pass_at_k(10, 3, 5) - (1 - 21.0 / 252)) < 1e-15);  // C(7,5)/C(10,5) = 21/252
  CHECK(std::fabs(pass_at_k(8, 3, 1) - 3.0 / 8) < 1e-15);       // pass@1 is the sampled accuracy c/n
  CHECK(pass_at_k(8, 0, 8) == 0.0);
  CHECK(pass_at_k(8, 8, 1) == 1.0);
}

TEST_CASE("train/pass_at_k: the estimator equals a brute-force enumeration of k-subsets for every n <= 12") {
  // The enumeration counts subsets exactly (integers), so the only error is the product's rounding: a product of
  // at most 12 factors, each rounded at ~1.1e-16 relative, stays well under 1e-14.
  double worst = 0;
  for (int n = 1; n <= 12; n++)
    for (int c = 0; c <= n; c++)
      for (int k = 1; k <= n; k++) worst = std::max(worst, std::fabs(pass_at_k(n, c, k) - brute_force_pass_at_k(n, c, k)));
  CHECK(worst < 1e-14);
}

TEST_CASE("train/pass_at_k: out-of-range arguments are refused with the values named") {
  CHECK(has(error_of([] { pass_at_k(4, 5, 1); }), "c = 5"));
  CHECK(has(error_of([] { pass_at_k(4, 1, 5); }), "k = 5"));
  CHECK(has(error_of([] { pass_at_k(0, 0, 1); }), "n = 0"));
}

TEST_CASE("train/pass_at_k: the sampled evaluation's pass@k, groups and entropy are consistent") {
  ModelConfig m = Config::preset("nano").model;
  m.init_std = 0.2f;     // O(1) logits: the samples differ, so the entropy is well above 0
  m.max_seq_len = 160;  // level-1 prompts are ~60-110 characters
  Transformer<float> model(m);
  model.init_weights(3);
  Tokenizer tok;
  const std::vector<Problem> ps = generate_problems(1, 6, 7, Split::test);
  const int K = 4;
  const SampledEvalResult r = evaluate_pass_at_k(model, tok, ps, K, 1.0f, 12, 5);
  REQUIRE(r.pass_at.size() == static_cast<std::size_t>(K));
  for (int k = 1; k < K; k++) CHECK(r.pass_at[k] >= r.pass_at[k - 1]);  // more draws never lower pass@k
  CHECK(r.all_right + r.all_wrong <= r.problems);
  CHECK(r.degenerate_share == doctest::Approx(static_cast<double>(r.all_right + r.all_wrong) / r.problems));
  CHECK(r.entropy > 0.1);  // nats; a spread-out distribution over ~100 ids at T 1 (ln 100 = 4.6)
  CHECK(r.mean_completion_len > 0);
  // Deterministic for a seed: the same call gives the same figures.
  const SampledEvalResult again = evaluate_pass_at_k(model, tok, ps, K, 1.0f, 12, 5);
  CHECK(again.entropy == r.entropy);
  CHECK(again.pass_at == r.pass_at);

  // At a near-zero temperature every sample is the greedy completion: each group is degenerate, pass@k is the
  // greedy accuracy for every k, and the completions are as long as the greedy ones.
  // T 1e-5 turns a top-two logit gap of 1e-4 into 10 nats (a second choice at e^-10); float noise between batch
  // sizes (~1e-6 in a logit) is 0.1 nats there, and a gap under 1e-4 is rare with O(1) logits (seeds fixed).
  const SampledEvalResult cold = evaluate_pass_at_k(model, tok, ps, K, 1e-5f, 12, 5);
  const EvalResult greedy = evaluate_exact_match(model, tok, ps, 12, 0);
  CHECK(cold.all_right + cold.all_wrong == cold.problems);
  for (double p : cold.pass_at) CHECK(p == doctest::Approx(greedy.accuracy));
  CHECK(cold.mean_completion_len == doctest::Approx(greedy.mean_completion_len));
  CHECK(has(error_of([&] { evaluate_pass_at_k(model, tok, ps, 0, 1.0f); }), "K = 0"));
  CHECK(has(error_of([&] { evaluate_pass_at_k(model, tok, ps, 2, 0.0f); }), "temperature"));
}
