// tests/train/paired_change_test.cpp — McNemar's paired comparison (train/paired_change.h) against hand-computed
// counts, standard errors and exact p-values, a binomial tail summed in exact integers, and the per-problem results
// it reads (EvalResult::right, train/evaluate.h, and LevelAccuracy::right, posttrain/trainer_common.h).
//
// Shapes: n problems; a, b (n) with 1 where that checkpoint answered problem i right.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <vector>

#include "tests/util/error_util.h"
#include "tests/util/one_problem_ckpt.h"
#include "tinyds/data/generator.h"
#include "tinyds/data/problem.h"
#include "tinyds/posttrain/trainer_common.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/evaluate.h"
#include "tinyds/train/paired_change.h"

using namespace tinyds;
using tinyds_test::error_of;
using tinyds_test::has;

// Hand-computed values are exact fractions or square roots; 1e-12 is double rounding of a few operations.
constexpr double kTol = 1e-12;

TEST_CASE("train/paired_change: counts, change, standard error and McNemar's p by hand") {
  // A right on problems 0-2, B on 1-5: only A on 0, only B on 3, 4, 5. change (3 - 1) / 10; se sqrt(4 - 4/10) / 10;
  // p = 2 (C(4,0) + C(4,1)) / 2^4 = 10/16.
  PairedChange c = paired_change({1, 1, 1, 0, 0, 0, 0, 0, 0, 0}, {0, 1, 1, 1, 1, 1, 0, 0, 0, 0});
  CHECK(c.n == 10);
  CHECK(c.only_a == 1);
  CHECK(c.only_b == 3);
  CHECK(c.change == doctest::Approx(0.2).epsilon(kTol));
  CHECK(c.se == doctest::Approx(std::sqrt(3.6) / 10).epsilon(kTol));
  CHECK(c.p_value == doctest::Approx(10.0 / 16).epsilon(kTol));

  // B right on 9 problems A gets wrong, A on the tenth: p = 2 (1 + 10) / 2^10; change 0.8, se sqrt(10 - 6.4) / 10.
  c = paired_change({1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  CHECK(c.only_a == 1);
  CHECK(c.only_b == 9);
  CHECK(c.change == doctest::Approx(0.8).epsilon(kTol));
  CHECK(c.se == doctest::Approx(std::sqrt(3.6) / 10).epsilon(kTol));
  CHECK(c.p_value == doctest::Approx(22.0 / 1024).epsilon(kTol));

  // Five discordant problems, all one way, among 20: p = 2 / 2^5, change 0.25, se sqrt(5 - 25/20) / 20; and the
  // other way round the change is negated with the same se and p.
  std::vector<char> none(20, 0), five(20, 0);
  for (int i = 0; i < 5; i++) five[i] = 1;
  c = paired_change(none, five);
  CHECK(c.change == doctest::Approx(0.25).epsilon(kTol));
  CHECK(c.se == doctest::Approx(std::sqrt(3.75) / 20).epsilon(kTol));
  CHECK(c.p_value == doctest::Approx(2.0 / 32).epsilon(kTol));
  const PairedChange back = paired_change(five, none);
  CHECK(back.change == doctest::Approx(-0.25).epsilon(kTol));
  CHECK(back.se == doctest::Approx(c.se).epsilon(kTol));
  CHECK(back.p_value == doctest::Approx(c.p_value).epsilon(kTol));

  // The same answers: nothing discordant, no change, p 1.
  c = paired_change(five, five);
  CHECK(c.only_a + c.only_b == 0);
  CHECK(c.change == 0);
  CHECK(c.se == 0);
  CHECK(c.p_value == 1);
}

TEST_CASE("train/paired_change: the table's guard: a change only between evaluations of the same problems") {
  // Level tables (the demo's, dpo's and grpo's) print a standard error only where both evaluations have
  // per-problem results of the same length; anything else gets no comparison instead of an exception.
  const std::vector<char> a = {1, 1, 0, 0}, b = {0, 1, 1, 1}, shorter = {1, 0, 1};
  const std::optional<PairedChange> c = paired_change_if_comparable(a, b);
  REQUIRE(c.has_value());
  CHECK(c->only_a == 1);  // the same counts as paired_change's: 1 right under A only, 2 under B only
  CHECK(c->only_b == 2);
  CHECK(c->change == 0.25);
  CHECK_FALSE(paired_change_if_comparable(a, shorter).has_value());
  CHECK_FALSE(paired_change_if_comparable({}, {}).has_value());
}

TEST_CASE("train/paired_change: the binomial tail equals exact integer sums, and does not underflow") {
  // m = 30 discordant, 8 under A, 22 under B: 2 sum_{i<=8} C(30, i) / 2^30 with the binomials from Pascal's triangle
  // in 64-bit integers (exact up to C(30, 15) ~ 1.6e8).
  std::vector<std::vector<int64_t>> C(31, std::vector<int64_t>(31, 0));
  for (int m = 0; m <= 30; m++) {
    C[m][0] = 1;
    for (int i = 1; i <= m; i++) C[m][i] = C[m - 1][i - 1] + C[m - 1][i];
  }
  int64_t tail = 0;
  for (int i = 0; i <= 8; i++) tail += C[30][i];
  std::vector<char> a(40, 0), b(40, 0);
  for (int i = 0; i < 8; i++) a[i] = 1;
  for (int i = 8; i < 30; i++) b[i] = 1;
  // The log-gamma route's error: a few ulps per term in the exponent, ~1e-14 relative over 9 terms.
  CHECK(paired_change(a, b).p_value == doctest::Approx(2.0 * tail / (1 << 30)).epsilon(1e-12));

  // 2000 discordant problems: 2^-2000 is below the smallest double, and a balanced split gives p = 1.
  std::vector<char> zeros(2000, 0), ones(2000, 1), half(2000, 0);
  for (int i = 0; i < 1000; i++) half[i] = 1;
  std::vector<char> other_half(2000, 1);
  for (int i = 0; i < 1000; i++) other_half[i] = 0;
  const PairedChange one_way = paired_change(zeros, ones);
  CHECK(std::isfinite(one_way.p_value));
  CHECK(one_way.p_value >= 0);
  CHECK(one_way.p_value < 1e-300);
  CHECK(paired_change(half, other_half).p_value == 1);
}

TEST_CASE("train/paired_change: evaluations of different lengths are refused") {
  CHECK(has(error_of([] { paired_change({1, 0}, {1, 0, 1}); }), "2 and 3 results"));
  CHECK(has(error_of([] { paired_change({}, {}); }), "non-empty"));
}

TEST_CASE("train/evaluate: right[i] says whether problem i's answer was right") {
  // The one-problem checkpoint writes its problem's worked solution, then "#### N" or "#### N+1" (a coin flip it
  // has settled one way under greedy decoding): asked the problem with each of the two as its answer, it is right on
  // exactly one, and right[] must say which, as parsing its completion does.
  const LoadedCheckpoint ck = load_checkpoint(tinyds::test::one_problem_ckpt());
  Transformer<float> model(ck.config.model);
  load_params_into(ck, model);
  const Problem p = generate_problems(1, 1, tinyds::test::kOneProblemSeed + 7919ull * 1, Split::train).at(0);
  Problem off_by_one = p;
  off_by_one.final_answer = p.final_answer + 1;
  const std::vector<Problem> ps = {p, off_by_one};
  const EvalResult r = evaluate_exact_match(model, ck.tokenizer, ps, 96, 2, 0);
  REQUIRE(r.right.size() == 2);
  REQUIRE(r.examples.size() == 2);
  CHECK(r.correct == 1);
  CHECK(r.right[0] + r.right[1] == 1);
  for (int i = 0; i < 2; i++) {
    const std::string text = r.examples[i].substr(r.examples[i].find(" -> ") + 4);
    const std::optional<int64_t> said = parse_final_answer(text);
    CHECK(static_cast<bool>(r.right[i]) == (said && *said == ps[i].final_answer));
  }
  // lines[k] counts the completions with k calculator annotations: both completions are the level-1 solution's one
  // line (the same text up to the final answer).
  REQUIRE(r.lines.size() == 2);
  CHECK(r.lines[0] == 0);
  CHECK(r.lines[1] == 2);
  // The post-training commands' evaluation keeps the same per-problem results for their before / after tables.
  std::ostringstream metrics;
  const std::vector<LevelAccuracy> per = evaluate_levels(model, ck.tokenizer, {ps}, {1}, 96, 0, metrics, "test", true);
  REQUIRE(per.size() == 1);
  CHECK(per[0].right == r.right);
  CHECK(per[0].level_lines == 1.0);  // both answers take the one line a level-1 problem needs
  // Read as level 2, the same one-line answers have the wrong number of lines.
  CHECK(evaluate_levels(model, ck.tokenizer, {ps}, {2}, 96, 0, metrics, "test", true)[0].level_lines == 0.0);
}
