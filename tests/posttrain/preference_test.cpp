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
