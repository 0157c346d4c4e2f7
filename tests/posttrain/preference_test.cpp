// tests/posttrain/preference_test.cpp — the preference pairs of `tinyds rm` / `tinyds dpo` (posttrain/preference.h):
// each corruption changes exactly what it says, the pair batch lines up chosen and rejected rows, and the last
// completion position is the one that predicts <eos>.
#include <doctest/doctest.h>

#include "tests/util/error_util.h"
#include "tinyds/data/generator.h"
#include "tinyds/posttrain/preference.h"

using namespace tinyds;
using tinyds_test::error_of;
using tinyds_test::has;

TEST_CASE("posttrain/preference: corruptions change one result and nothing else") {
  Problem p;
  p.question = "Tom has 12 apples.";
  p.answer = "12+7=<<12+7=19>>19\n19*3=<<19*3=57>>57\n#### 57";
  p.final_answer = 57;
  for (uint64_t draw = 0; draw < 64; draw++) {
    const Problem f = corrupt_solution(p, PairCorruption::final_answer, draw);
    CHECK(f.question == p.question);
    CHECK(f.final_answer != 57);
    CHECK(f.final_answer >= 48);  // 57 +- 1..9
    CHECK(f.final_answer <= 66);
    CHECK(f.answer == "12+7=<<12+7=19>>19\n19*3=<<19*3=57>>57\n#### " + std::to_string(f.final_answer));
    CHECK(parse_final_answer(f.answer).value() == f.final_answer);

    const Problem m = corrupt_solution(p, PairCorruption::intermediate, draw);
    CHECK(m.answer != p.answer);
    const bool first = m.answer.rfind("12+7=<<12+7=19>>19\n", 0) != 0;  // the first step was changed
    if (first) {
      // "12+7=<<12+7=w>>w\n19*3=..." with w != 19: the later steps and the final answer are untouched
      CHECK(m.final_answer == 57);
      CHECK(has(m.answer, "\n19*3=<<19*3=57>>57\n#### 57"));
      CHECK(!has(m.answer, "=19>>19"));
    } else {
      // the last step: its result and the #### number agree on the same wrong value
      CHECK(m.final_answer != 57);
      const std::string w = std::to_string(m.final_answer);
      CHECK(m.answer == "12+7=<<12+7=19>>19\n19*3=<<19*3=" + w + ">>" + w + "\n#### " + w);
    }
  }
  // Over 64 draws both steps get corrupted at least once, and mixed gives both kinds.
  int first = 0, finals = 0;
  for (uint64_t draw = 0; draw < 64; draw++) {
    first += corrupt_solution(p, PairCorruption::intermediate, draw * 0x9e3779b97f4a7c15ull).final_answer == 57;
    finals += has(corrupt_solution(p, PairCorruption::mixed, draw * 0x9e3779b97f4a7c15ull).answer, "=57>>57");
  }
  CHECK(first > 0);
  CHECK(first < 64);
  CHECK(finals > 0);
  CHECK(finals < 64);
  CHECK(has(error_of([] { parse_pair_corruption("typo"); }), "--corruption 'typo'"));
}

TEST_CASE("posttrain/preference: only_final_line_differs tells the two corruptions apart") {
  Problem p;
  p.answer = "12+7=<<12+7=19>>19\n19*3=<<19*3=57>>57\n#### 57";
  for (uint64_t draw = 0; draw < 32; draw++) {
    CHECK(only_final_line_differs(p, corrupt_solution(p, PairCorruption::final_answer, draw)));
    CHECK(!only_final_line_differs(p, corrupt_solution(p, PairCorruption::intermediate, draw)));
  }
  CHECK(!only_final_line_differs(p, p));  // no corruption at all
  Problem q = p;
  q.answer = "12+7=<<12+7=19>>19\n19*3=<<19*3=57>>57\n#### 570";  // a longer number: still the final line only
  CHECK(only_final_line_differs(p, q));
  q.answer = "12+7=<<12+7=19>>19\n19*3=<<19*3=57>>57\n57";  // no "####" in the rejected solution
  CHECK(!only_final_line_differs(p, q));
}

TEST_CASE("posttrain/preference: pair rows and their batch") {
  const std::vector<Problem> ps = generate_problems(2, 5, 3, Split::train);
  const std::vector<Problem> rows = preference_rows(ps, PairCorruption::mixed, 9);
  REQUIRE(rows.size() == 10);
  for (int i = 0; i < 5; i++) {
    CHECK(rows[i].answer == ps[i].answer);          // chosen: as given
    CHECK(rows[5 + i].question == ps[i].question);  // rejected: same question, different solution
    CHECK(rows[5 + i].answer != ps[i].answer);
  }
  CHECK(preference_rows(ps, PairCorruption::mixed, 9)[7].answer == rows[7].answer);  // deterministic in the seed
  const Tokenizer tok;
  const Batch b = preference_batch(rows, tok, 1000);
  CHECK(b.B == 10);
  CHECK(b.truncated == 0);
  const std::vector<int> last = last_target_positions(b);
  for (int r = 0; r < b.B; r++) {
    REQUIRE(last[r] >= 0);
    CHECK(b.targets[r * b.T + last[r]] == Tokenizer::EOS);  // the state that has read the whole answer
    // the input there is the answer's last character (its final digit)
    CHECK(tok.decode({b.inputs[r * b.T + last[r]]}) == rows[r].answer.substr(rows[r].answer.size() - 1));
  }
  CHECK(fits_in_context(rows[0], static_cast<int>(rows[0].question.size() + rows[0].answer.size()) + 2, 0));
  CHECK(!fits_in_context(rows[0], static_cast<int>(rows[0].question.size() + rows[0].answer.size()) + 1, 0));
}

TEST_CASE("posttrain/preference: a rejected answer's right results after the pair's difference are spared") {
  // Hand-made pairs; the spans are counted by hand from the strings (results run from c inside "<<E=c>>" to the end
  // of the number after ">>", reward.h's StepCheck).
  const std::string right = "81-54=<<81-54=27>>27\n27*5=<<27*5=135>>135\n#### 135";
  // A wrong operation in line 2 ('-' for '*'): its arithmetic holds, so its result "22>>22" (characters 33-39) is
  // spared; line 1 is before the difference (shared by both rows).
  const std::string minus = "81-54=<<81-54=27>>27\n27-5=<<27-5=22>>22\n#### 22";
  CHECK(minus.substr(33, 6) == "22>>22");
  CHECK(spared_results(right, minus) == std::vector<std::pair<std::size_t, std::size_t>>{{33, 39}});
  // A wrong result in line 2: nothing to spare (the wrong line is what is pushed down).
  CHECK(spared_results(right, "81-54=<<81-54=27>>27\n27*5=<<27*5=125>>125\n#### 125").empty());
  // A wrong first line carried on: line 1 is wrong, line 2's "37*5=185" holds and comes after the difference.
  const std::string carried = "81-54=<<81-54=37>>37\n37*5=<<37*5=185>>185\n#### 185";
  CHECK(carried.substr(33, 8) == "185>>185");
  CHECK(spared_results(right, carried) == std::vector<std::pair<std::size_t, std::size_t>>{{33, 41}});

  // The mask: row 1 loses exactly the targets of its characters 33-38; row 0 keeps all.
  Problem a;
  a.question = "Sara is 81.";
  a.answer = right;
  a.final_answer = 135;
  Problem b = a;
  b.answer = minus;
  b.final_answer = 22;
  const std::vector<Problem> rows = {a, b};
  const Tokenizer tok;
  const Batch full = preference_batch(rows, tok, 1000);
  Batch cut = full;
  mask_answer_spans(cut, rows, {{}, {{33, 39}}});
  const int T = full.T;
  std::string kept1;
  for (int t = 0; t < T; t++) {
    CHECK(cut.targets[t] == full.targets[t]);
    if (cut.targets[T + t] >= 0) kept1 += tok.decode({cut.targets[T + t]});
  }
  CHECK(kept1 == minus.substr(0, 33) + minus.substr(39) + "<eos>");
  CHECK(has(error_of([&] { mask_answer_spans(cut, rows, {{}}); }), "1 span lists and 2 rows"));
  CHECK(has(error_of([&] { mask_answer_spans(cut, rows, {{}, {{40, 60}}}); }), "span [40, 60) outside row 1"));
}
