// tests/data/batch_test.cpp — problems -> (inputs, targets): shifting, prompt masking, padding, truncation.
#include <doctest/doctest.h>

#include "tests/util/error_util.h"

#include <string>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/data/batch.h"
#include "tinyds/data/generator.h"

using tinyds::Batch;
using tinyds::Problem;
using tinyds::Tokenizer;

namespace {

using tinyds_test::error_of;
using tinyds_test::has;

Problem make(const std::string& q, const std::string& a) {
  Problem p;
  p.question = q;
  p.answer = a;
  return p;
}

// The full row, built here from the tokenizer alone: <bos> question '\n' answer <eos>.
std::vector<int> full_sequence(const Problem& p, const Tokenizer& tok) {
  std::vector<int> s = {Tokenizer::BOS};
  for (int id : tok.encode(p.question + "\n" + p.answer)) s.push_back(id);
  s.push_back(Tokenizer::EOS);
  return s;
}

const std::vector<Problem> kProblems = {
    make("Tom has 12 apples. He buys 7 more. How many apples now?", "12+7=<<12+7=19>>19\n#### 19"),
    make("A bus has 9 people. 3 get off. How many people now?", "9-3=<<9-3=6>>6\n#### 6"),
    make("Q?", "#### 1"),
};

}  // namespace

TEST_CASE("data/batch: targets are the inputs shifted by one, padding is PAD in and -1 out") {
  Tokenizer tok;
  const int T = 96;  // longer than every row: no truncation
  std::vector<int> idx = {2, 0, 1, 0};  // rows may repeat and come in any order
  Batch b = tinyds::make_batch(kProblems, idx, tok, T, /*mask_prompt=*/false);
  CHECK(b.B == 4);
  CHECK(b.T == T);
  REQUIRE(b.inputs.size() == 4u * T);
  REQUIRE(b.targets.size() == 4u * T);
  CHECK(b.truncated == 0);
  for (int r = 0; r < b.B; r++) {
    const Problem& p = kProblems[idx[r]];
    std::vector<int> seq = full_sequence(p, tok);
    const int len = static_cast<int>(seq.size());
    const int* in = &b.inputs[r * T];
    const int* tg = &b.targets[r * T];
    int unmasked = 0, last_unmasked = -1;
    for (int t = 0; t < T; t++) {
      CHECK(in[t] == (t < len ? seq[t] : Tokenizer::PAD));
      if (tg[t] != -1) {
        unmasked++;
        last_unmasked = t;
        CHECK(tg[t] == seq[t + 1]);
        if (t + 1 < T) CHECK(tg[t] == in[t + 1]);  // shifted by one
      } else {
        CHECK(t + 1 >= len);  // only padding is masked without mask_prompt
      }
    }
    CHECK(in[0] == Tokenizer::BOS);
    CHECK(tg[0] == tok.encode(p.question.substr(0, 1))[0]);  // after <bos> comes the first question char
    CHECK(unmasked == len - 1);
    CHECK(tg[last_unmasked] == Tokenizer::EOS);
  }
}

TEST_CASE("data/batch: mask_prompt leaves exactly answer and <eos> as targets") {
  Tokenizer tok;
  const int T = 96;  // longer than every row: nothing truncated
  std::vector<int> idx = {0, 1, 2};
  Batch b = tinyds::make_batch(kProblems, idx, tok, T, /*mask_prompt=*/true);
  CHECK(b.truncated == 0);
  for (int r = 0; r < b.B; r++) {
    const Problem& p = kProblems[idx[r]];
    const int* tg = &b.targets[r * T];
    int first = -1, last = -1, unmasked = 0;
    for (int t = 0; t < T; t++)
      if (tg[t] != -1) {
        if (first < 0) first = t;
        last = t;
        unmasked++;
      }
    // The prompt is <bos> question '\n'; its last position predicts the first answer character.
    CHECK(first == static_cast<int>(tinyds::encode_prompt(p, tok).size()) - 1);
    CHECK(tg[first] == tok.encode(p.answer.substr(0, 1))[0]);
    CHECK(tg[last] == Tokenizer::EOS);
    CHECK(unmasked == static_cast<int>(p.answer.size()) + 1);  // answer characters + <eos>, no gaps
    CHECK(last - first + 1 == unmasked);
  }
}

TEST_CASE("data/batch: encode_prompt is <bos> question newline") {
  Tokenizer tok;
  std::vector<int> expect = {Tokenizer::BOS};
  for (int id : tok.encode(kProblems[0].question + "\n")) expect.push_back(id);
  CHECK(tinyds::encode_prompt(kProblems[0], tok) == expect);
}

TEST_CASE("data/batch: rows longer than T+1 are truncated and counted") {
  Tokenizer tok;
  const int T = 20;  // row 0 and 1 are longer than 21 tokens, row 2 ("Q?" / "#### 1") is 11
  Batch b = tinyds::make_batch(kProblems, {0, 1, 2}, tok, T, /*mask_prompt=*/false);
  CHECK(b.truncated == 2);
  for (int r = 0; r < 2; r++) {
    std::vector<int> seq = full_sequence(kProblems[r], tok);
    for (int t = 0; t < T; t++) {
      CHECK(b.inputs[r * T + t] == seq[t]);
      CHECK(b.targets[r * T + t] == seq[t + 1]);  // nothing masked: the whole window is real text
    }
  }
  // With the prompt masked, a row cut inside its question has no target at all.
  Batch m = tinyds::make_batch(kProblems, {0}, tok, T, /*mask_prompt=*/true);
  CHECK(m.truncated == 1);
  for (int t = 0; t < T; t++) CHECK(m.targets[t] == -1);
}

TEST_CASE("data/batch: generated level-1 problems fit T = 127 inputs without truncation") {
  // T + 1 = 128 tokens per row: the demo's sequence length.
  Tokenizer tok;
  std::vector<Problem> ps = tinyds::generate_problems(1, 500, 9, tinyds::Split::train);
  std::vector<int> idx(ps.size());
  for (size_t i = 0; i < idx.size(); i++) idx[i] = static_cast<int>(i);
  CHECK(tinyds::make_batch(ps, idx, tok, 127, true).truncated == 0);
}

TEST_CASE("data/batch: bad indices, T and characters are errors naming them") {
  Tokenizer tok;
  std::string msg = error_of([&] { tinyds::make_batch(kProblems, {0, 7}, tok, 16, false); });
  CHECK(has(msg, "idx[1]"));
  CHECK(has(msg, "7"));
  CHECK(has(error_of([&] { tinyds::make_batch(kProblems, {0}, tok, 0, false); }), "T = 0"));
  std::vector<Problem> bad = {make("ok", "fine\n#### 1"), make("tab\there", "#### 2")};
  msg = error_of([&] { tinyds::make_batch(bad, {0, 1}, tok, 16, false); });
  CHECK(has(msg, "problem 1"));
  CHECK(has(msg, "question"));
  CHECK(has(msg, "\\x09"));
  CHECK(has(msg, "position 3"));
}
