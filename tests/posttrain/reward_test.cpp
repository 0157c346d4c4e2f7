// tests/posttrain/reward_test.cpp — R1-style rule-based rewards (posttrain/reward.h): accuracy, format, their
// weighted total, and GRPO group statistics. Every case is written by hand; the comment says which rule it hits.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/util/error_util.h"
#include "tinyds/data/problem.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/posttrain/reward.h"

using namespace tinyds;

namespace {

struct Case {
  const char* name;
  std::string text;   // the completion without its <eos>
  bool eos;           // did it end with <eos>?
  int64_t answer;
  double accuracy, format;
};

// The training format: reasoning lines, then "#### N" (data/problem.h).
const std::string kGood = "12+7=<<12+7=19>>19\n#### 19";

}  // namespace

TEST_CASE("posttrain/reward: accuracy and format on hand-written completions") {
  const Case cases[] = {
      {"correct and well formed", kGood, true, 19, 1, 1},
      {"wrong number, still well formed", kGood, true, 20, 0, 1},
      {"two ####: accuracy reads the last, format wants exactly one", "3+4=7\n#### 7\n#### 19", true, 19, 1, 0},
      {"two ####, last one wrong", "3+4=7\n#### 19\n#### 7", true, 19, 0, 0},
      {"missing reasoning: the answer line is the only line", "#### 19", true, 19, 1, 0},
      {"missing reasoning: only blank lines before it", " \n\n#### 19", true, 19, 1, 0},
      {"truncated without <eos>: right number, no format reward", kGood, false, 19, 1, 0},
      {"truncated mid-answer", "12+7=<<12+7=19>>19\n#### 1", false, 19, 0, 0},
      {"negative number", "3-10=<<3-10=-7>>-7\n#### -7", true, -7, 1, 1},
      {"comma thousands separators", "500*2=<<500*2=1000>>1000\n#### 1,000", true, 1000, 1, 1},
      {"malformed comma groups parse as nothing", "500*2=1000\n#### 1,00", true, 1000, 0, 0},
      {"no #### at all", "12+7=19\n19", true, 19, 0, 0},
      {"#### not at the start of its line", "12+7=19\nso #### 19", true, 19, 1, 0},
      {"text after the answer line", "12+7=19\n#### 19\nthanks", true, 19, 0, 0},
      {"trailing newline after the answer is fine", kGood + "\n", true, 19, 1, 1},
      {"decimal answer is not well formed", "1/2=0.5\n#### 0.5", true, 0, 0, 0},
      // "#####": the last "####" starts at its 2nd "#", so accuracy reads 19; format wants exactly one marker.
      {"##### (five) is not one well-formed marker", "12+7=19\n##### 19", true, 19, 1, 0},
      {"empty completion", "", true, 0, 0, 0},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.name), " | text: ", c.text);
    const RewardBreakdown r = score_completion(c.text, c.eos, c.answer);
    CHECK(r.accuracy == c.accuracy);
    CHECK(r.format == c.format);
    CHECK(r.total == c.accuracy + c.format);  // default weights 1 and 1
    CHECK(r.ended_with_eos == c.eos);
  }
}

TEST_CASE("posttrain/reward: the steps rule checks every calculator annotation, and gates accuracy") {
  struct Steps { const char* name; std::string text; double steps; };
  const Steps cases[] = {
      {"the training format", kGood, 1},
      {"no annotation: nothing to check", "3+4=7\n#### 7", 1},
      {"two right lines", "38+90=<<38+90=128>>128\n128/8=<<128/8=16>>16\n#### 16", 1},
      {"negative result", "3-10=<<3-10=-7>>-7\n#### -7", 1},
      {"precedence: 2+3*4 is 14", "2+3*4=<<2+3*4=14>>14\n#### 14", 1},
      {"precedence: 2+3*4 is not 20", "2+3*4=<<2+3*4=20>>20\n#### 20", 0},
      {"spaces inside", "12 + 7 = << 12 + 7 = 19 >>19\n#### 19", 1},
      {"a carry error", "76+53=<<76+53=139>>139\n#### 139", 0},
      {"a lucky fourth line", "128/8=<<128/8=16>>16\n16/8=<<16/8=2>>2\n2/8=<<2/8=2>>2\n#### 2", 0},
      {"the second of two lines wrong", "12+7=<<12+7=19>>19\n19*3=<<19*3=56>>56\n#### 56", 0},
      {"a different number carried on", "12+7=<<12+7=19>>18\n#### 18", 0},
      {"no number after the annotation", "12+7=<<12+7=19>>\n#### 19", 0},
      {"division that is not exact", "7/2=<<7/2=3>>3\n#### 3", 0},
      {"division by zero", "7/0=<<7/0=0>>0\n#### 0", 0},
      {"never closed", "12+7=<<12+7=19", 0},
      {"no = inside", "<<19>>19\n#### 19", 0},
      {"not arithmetic", "<<a+b=c>>c\n#### 1", 0},
      {"overflow", "<<9999999999*9999999999=1>>1\n#### 1", 0},
  };
  for (const Steps& c : cases) {
    INFO(std::string(c.name), " | text: ", c.text);
    CHECK(steps_reward(c.text) == c.steps);
    const std::optional<int64_t> answer = parse_final_answer(c.text);
    if (!answer) continue;
    // The final number is the answer in every case: accuracy follows the steps rule by default, and is 1
    // without it.
    const RewardBreakdown checked = score_completion(c.text, true, *answer);
    CHECK(checked.steps == c.steps);
    CHECK(checked.accuracy == c.steps);
    RewardRules plain;
    plain.check_steps = false;
    CHECK(score_completion(c.text, true, *answer, plain).accuracy == 1);
  }
}

TEST_CASE("posttrain/reward: check_steps gives each annotation's result span and verdict") {
  // Spans are found by hand with string search: from c inside "<<E=c>>" to the end of the number written after it.
  const std::string text = "38+90=<<38+90=128>>128\n128/8=<<128/8=15>>15\n12+7=<<12+7=19>>18\n#### 18";
  bool well_formed = false;
  const std::vector<StepCheck> c = check_steps(text, &well_formed);
  CHECK(well_formed);
  REQUIRE(c.size() == 3);
  const std::string results[] = {"128>>128", "15>>15", "19>>18"};
  const bool right[] = {true, false, false};  // the second line's sum is wrong, the third carries on another number
  for (int i = 0; i < 3; i++) {
    INFO("annotation ", i);
    CHECK(c[i].begin == text.find(results[i]));
    CHECK(c[i].end == text.find(results[i]) + results[i].size());
    CHECK(c[i].right == right[i]);
  }
  // A malformed annotation ends the list (the ones before it are still checked) and clears well_formed.
  const std::vector<StepCheck> cut = check_steps("1+1=<<1+1=2>>2\n2+2=<<2+2=4", &well_formed);
  CHECK_FALSE(well_formed);
  REQUIRE(cut.size() == 1);
  CHECK(cut[0].right);
  // No number written after ">>": the span ends at ">>", and the line is wrong.
  const std::vector<StepCheck> bare = check_steps("<<1+1=2>>\n#### 2");
  REQUIRE(bare.size() == 1);
  CHECK(bare[0].begin == 6);
  CHECK(bare[0].end == 9);
  CHECK_FALSE(bare[0].right);
}

TEST_CASE("posttrain/reward: weights scale each part, and parsed is the last #### integer") {
  RewardRules w;
  w.accuracy = 2.0; w.format = 0.25;
  RewardBreakdown r = score_completion(kGood, true, 19, w);
  CHECK(r.total == 2.25);
  r = score_completion(kGood, true, 18, w);
  CHECK(r.total == 0.25);
  REQUIRE(r.parsed.has_value());
  CHECK(*r.parsed == 19);
  r = score_completion("1\n#### 5\n#### 6", true, 0, w);
  CHECK(*r.parsed == 6);
}

TEST_CASE("posttrain/reward: completions as token ids, <eos> decides truncation") {
  Tokenizer tok;
  std::vector<int> ids = tok.encode(kGood);
  RewardBreakdown cut = score_completion_tokens(ids.data(), static_cast<int>(ids.size()), tok, 19);
  CHECK(cut.accuracy == 1);
  CHECK(cut.format == 0);  // no <eos>: truncated
  CHECK_FALSE(cut.ended_with_eos);
  ids.push_back(Tokenizer::EOS);
  RewardBreakdown done = score_completion_tokens(ids.data(), static_cast<int>(ids.size()), tok, 19);
  CHECK(done.accuracy == 1);
  CHECK(done.format == 1);  // the <eos> itself is not part of the text the rules read
  CHECK(done.ended_with_eos);
}

TEST_CASE("posttrain/reward: group statistics over G consecutive completions") {
  // Groups of G = 4: {2,0,1,1}, {1,1,1,1} (degenerate), {0,0,0,2}.
  const std::vector<double> r = {2, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 2};
  const GroupStats s = group_stats(r, 4);
  REQUIRE(s.n_groups == 3);
  CHECK(s.G == 4);
  CHECK(s.mean[0] == doctest::Approx(1.0));
  CHECK(s.mean[1] == doctest::Approx(1.0));
  CHECK(s.mean[2] == doctest::Approx(0.5));
  // Unbiased std: group 0 squares (1+1+0+0)/3; group 2 (0.25*3 + 2.25)/3 = 1.
  CHECK(s.std[0] == doctest::Approx(std::sqrt(2.0 / 3.0)));
  CHECK(s.std[1] == 0.0);
  CHECK(s.std[2] == doctest::Approx(1.0));
  CHECK(s.degenerate == 1);
  CHECK(s.mean_reward == doctest::Approx(10.0 / 12.0));
  // G = 1: every group is a single reward, hence degenerate, std 0.
  const GroupStats one = group_stats({3, 4}, 1);
  CHECK(one.degenerate == 2);
  CHECK(one.std[1] == 0.0);
  // Sizes that do not divide into groups are errors naming both numbers.
  CHECK(tinyds_test::has(tinyds_test::error_of([] { group_stats({1, 2, 3}, 2); }), "G = 2"));
  CHECK(tinyds_test::has(tinyds_test::error_of([] { group_stats({1, 2}, 0); }), "G = 0"));
}
