// tests/data/distractors_test.cpp — irrelevant sentences in training questions (data/distractors.h).
#include <doctest/doctest.h>

#include "tests/util/error_util.h"

#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "tinyds/data/distractors.h"
#include "tinyds/data/generator.h"
#include "tinyds/model/config.h"
#include "tinyds/train/batch_source.h"

using namespace tinyds;
using tinyds_test::error_of;
using tinyds_test::has;

namespace {

// The one distractor sentence (with its trailing space) that turns `original` into `changed`, or "" if none does.
std::string inserted_sentence(const std::string& original, const std::string& changed) {
  for (const char* s : distractor_sentences()) {
    const std::string piece = std::string(s) + " ";
    for (std::size_t at = changed.find(piece); at != std::string::npos; at = changed.find(piece, at + 1))
      if (changed.substr(0, at) + changed.substr(at + piece.size()) == original) return piece;
  }
  return "";
}

}  // namespace

TEST_CASE("data/distractors: the sentences carry no number and end a sentence") {
  REQUIRE(distractor_sentences().size() >= 8);
  for (const char* s : distractor_sentences()) {
    const std::string t = s;
    for (char c : t) CHECK_MESSAGE(!std::isdigit(static_cast<unsigned char>(c)), t);
    CHECK(t.back() == '.');
  }
}

TEST_CASE("data/distractors: share 1 puts exactly one sentence at a sentence boundary of every question, answers "
          "unchanged") {
  const std::vector<Problem> before = generate_problems(2, 300, 11, Split::train);
  std::vector<Problem> after = before;
  const int changed = add_distractors(after, 1.0, 5, 1000);
  CHECK(changed == 300);
  int at_start = 0, before_last = 0;
  for (std::size_t i = 0; i < before.size(); i++) {
    const std::string piece = inserted_sentence(before[i].question, after[i].question);
    REQUIRE_MESSAGE(!piece.empty(), after[i].question);
    CHECK(after[i].answer == before[i].answer);
    CHECK(after[i].final_answer == before[i].final_answer);
    // The question sentence stays last, and the sentence starts the question or follows ". ".
    CHECK(after[i].question.back() == '?');
    const std::size_t at = after[i].question.find(piece);
    CHECK((at == 0 || after[i].question.compare(at - 2, 2, ". ") == 0));
    at_start += at == 0;
    before_last += after[i].question.compare(at + piece.size(), 3, "How") == 0 ||
                   after[i].question.compare(at + piece.size(), 4, "What") == 0;
  }
  // Every boundary gets used (each of the 2-3 boundaries of a level-2 question has chance >= 1/3).
  CHECK(at_start > 30);
  CHECK(before_last > 30);
}

TEST_CASE("data/distractors: before_question puts the drawn sentence just before the question asked") {
  const std::vector<Problem> before = generate_problems(3, 200, 13, Split::train);
  std::vector<Problem> drawn = before, last = before;
  CHECK(add_distractors(drawn, 0.5, 8, 1000) == add_distractors(last, 0.5, 8, 1000, /*before_question=*/true));
  int changed = 0;
  for (std::size_t i = 0; i < before.size(); i++) {
    const std::string piece = inserted_sentence(before[i].question, last[i].question);
    // The same draws: the same questions get the same sentence, only its place differs.
    CHECK(piece == inserted_sentence(before[i].question, drawn[i].question));
    if (piece.empty()) continue;
    changed++;
    // Independently of sentence_boundaries: the question asked is what follows the last ". " of the original.
    const std::size_t asked = before[i].question.rfind(". ") + 2;
    CHECK(last[i].question == before[i].question.substr(0, asked) + piece + before[i].question.substr(asked));
    CHECK(last[i].answer == before[i].answer);
  }
  CHECK(changed > 50);  // Binomial(200, 0.5): below 51 has a chance of ~1e-12
}

TEST_CASE("data/distractors: the share is the probability per question, and share 0 changes nothing") {
  const std::vector<Problem> before = generate_problems(1, 4000, 3, Split::train);
  std::vector<Problem> none = before;
  CHECK(add_distractors(none, 0.0, 5, 1000) == 0);
  for (std::size_t i = 0; i < before.size(); i++) CHECK(none[i].question == before[i].question);
  std::vector<Problem> half = before;
  const int changed = add_distractors(half, 0.5, 5, 1000);
  // Binomial(4000, 0.5): standard deviation sqrt(4000 * 0.25) ~ 31.6; 5 standard deviations (~158) leave a chance of
  // ~6e-7 of failing on a correct implementation.
  CHECK(std::abs(changed - 2000) < 158);
  int differ = 0;
  for (std::size_t i = 0; i < before.size(); i++) differ += half[i].question != before[i].question;
  CHECK(differ == changed);
}

TEST_CASE("data/distractors: deterministic in the seed, another seed makes other choices") {
  const std::vector<Problem> before = generate_problems(4, 200, 9, Split::train);
  std::vector<Problem> a = before, b = before, c = before;
  add_distractors(a, 0.5, 42, 1000);
  add_distractors(b, 0.5, 42, 1000);
  add_distractors(c, 0.5, 43, 1000);
  int same_ab = 0, same_ac = 0;
  for (std::size_t i = 0; i < before.size(); i++) {
    same_ab += a[i].question == b[i].question;
    same_ac += a[i].question == c[i].question;
  }
  CHECK(same_ab == 200);
  CHECK(same_ac < 150);  // independent draws agree (both unchanged, or the same sentence at the same place) ~27%
}

TEST_CASE("data/distractors: a question is left alone when the longer one would not fit max_tokens") {
  Problem p;
  p.question = "Tom has 12 apples. He buys 7 more. How many apples now?";
  p.answer = "12+7=<<12+7=19>>19\n#### 19";
  const int base = static_cast<int>(p.question.size() + p.answer.size()) + 3;  // <bos> q '\n' a <eos>
  std::vector<Problem> tight(50, p), roomy(50, p);
  CHECK(add_distractors(tight, 1.0, 1, base + 11) == 0);  // the shortest sentence plus its space is 12 characters
  for (const Problem& q : tight) CHECK(q.question == p.question);
  CHECK(add_distractors(roomy, 1.0, 1, base + 57) == 50);  // the longest (56) plus its space fits
}

TEST_CASE("data/distractors: a share outside [0, 1] is an error naming data.distractors") {
  std::vector<Problem> ps = generate_problems(1, 3, 1, Split::train);
  CHECK(has(error_of([&] { add_distractors(ps, 1.5, 1, 1000); }), "data.distractors = 1.5"));
  CHECK(has(error_of([&] { add_distractors(ps, -0.1, 1, 1000); }), "data.distractors"));
  Config cfg = Config::preset("nano");
  cfg.data.distractors = 2;
  CHECK(has(error_of([&] { cfg.validate(); }), "data.distractors"));
}

TEST_CASE("data/distractors: training_problems puts them into generated training questions by data.distractors") {
  Config cfg = Config::preset("small");  // seq_len 224: most level-1 and level-2 questions fit with a sentence
  cfg.data.levels = {1, 2};
  cfg.data.n_train = 400;
  const std::vector<Problem> plain = training_problems(cfg, "");
  cfg.data.distractors = 1.0;
  const std::vector<Problem> with = training_problems(cfg, "");
  REQUIRE(with.size() == plain.size());
  int changed = 0;
  for (std::size_t i = 0; i < plain.size(); i++) {
    CHECK(with[i].answer == plain[i].answer);
    if (with[i].question == plain[i].question) continue;
    changed++;
    CHECK(!inserted_sentence(plain[i].question, with[i].question).empty());
    // A changed question still fits the trainer's sequence (<bos> q '\n' a <eos> <= seq_len + 1).
    CHECK(static_cast<int>(with[i].question.size() + with[i].answer.size()) + 3 <= cfg.train.seq_len + 1);
  }
  CHECK(changed > 0);
}
