// tests/data/pad_drills_test.cpp — calculator drills packed into a batch's padding (data/pad_drills.h).
#include <doctest/doctest.h>

#include "tests/util/error_util.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tinyds/data/batch.h"
#include "tinyds/data/generator.h"
#include "tinyds/data/pad_drills.h"
#include "tinyds/model/config.h"
#include "tinyds/model/transformer.h"

using namespace tinyds;

namespace {

Problem make(const std::string& q, const std::string& a) {
  Problem p;
  p.question = q;
  p.answer = a;
  return p;
}

std::string text_of(const Tokenizer& tok, const std::vector<int>& ids, std::size_t from, std::size_t to) {
  return tok.decode(std::vector<int>(ids.begin() + from, ids.begin() + to));
}

}  // namespace

TEST_CASE("data/pad_drills: annotation_drills: one drill per <<expr=result>>, prompt <<expr=, completion result>>") {
  const Tokenizer tok;
  const std::vector<Problem> ps = {make("q1", "12+7=<<12+7=19>>19\n19*3=<<19*3=57>>57\n#### 57"),
                                   make("q2", "#### 4"), make("q3", "81/9=<<81/9=9>>9\n#### 9")};
  const std::vector<PadDrill> d = annotation_drills(ps, tok);
  REQUIRE(d.size() == 3);  // two from q1, none from q2, one from q3
  const std::vector<std::string> prompts = {"<<12+7=", "<<19*3=", "<<81/9="}, results = {"19>>", "57>>", "9>>"};
  for (int i = 0; i < 3; i++) {
    CAPTURE(i);
    CHECK(d[i].prompt_len == static_cast<int>(prompts[i].size()));  // one token per character
    CHECK(text_of(tok, d[i].tokens, 0, d[i].prompt_len) == prompts[i]);
    CHECK(text_of(tok, d[i].tokens, d[i].prompt_len, d[i].tokens.size()) == results[i]);
  }
  // An unclosed annotation is an error naming the problem and the position.
  const std::string e = tinyds_test::error_of([&] { annotation_drills({make("q", "1+1=<<1+1=2\n#### 2")}, tok); });
  CHECK(tinyds_test::has(e, "problem 0"));
  CHECK(tinyds_test::has(e, "position 4"));
}

TEST_CASE("data/pad_drills: fill_padding_with_drills: problems untouched, drills placed whole where they fit, loss only on results") {
  const Tokenizer tok;
  const std::vector<Problem> ps = generate_problems(1, 3, 5, Split::train);
  const std::vector<Problem> longer = generate_problems(2, 1, 5, Split::train);
  std::vector<Problem> all = ps;
  all.push_back(longer[0]);
  const std::vector<int> idx = {3, 0, 1, 2};  // the level-2 problem first: the longest row has little padding
  const int T = batch_columns(all, idx, 512);
  const Batch plain = make_batch(all, idx, tok, T, true);
  const std::vector<PadDrill> drills = annotation_drills(all, tok);
  REQUIRE(drills.size() == 5);
  const int lt = tok.encode("<")[0];  // every drill starts with "<<"; no word problem's answer ends with '<' 
  std::vector<int> cand;
  for (int k = 0; k < 40; k++) cand.push_back(k % 5);

  Batch packed = plain;
  const int placed = fill_padding_with_drills(packed, drills, cand);
  CHECK(placed > 0);
  int seen = 0;
  for (int b = 0; b < packed.B; b++) {
    CAPTURE(b);
    const int* in0 = &plain.inputs[b * T];
    const int* tg0 = &plain.targets[b * T];
    const int* in = &packed.inputs[b * T];
    const int* tg = &packed.targets[b * T];
    int len = 0;
    while (len < T && in0[len] != Tokenizer::PAD) len++;
    for (int t = 0; t < len; t++) {  // the word problem: every input and target as before
      REQUIRE(in[t] == in0[t]);
      REQUIRE(tg[t] == tg0[t]);
    }
    // After it: whole drills, candidates in order across rows, then padding with masked targets.
    int t = len;
    while (t < T && in[t] == lt) {
      const PadDrill& d = drills[cand[seen]];
      const int m = static_cast<int>(d.tokens.size());
      REQUIRE(t + m <= T);
      for (int j = 0; j < m; j++) {
        REQUIRE(in[t + j] == d.tokens[j]);
        const bool trained = j + 1 < m && j + 1 >= d.prompt_len;  // result digits, ">>"
        REQUIRE(tg[t + j] == (trained ? d.tokens[j + 1] : -1));
      }
      t += m;
      seen++;
    }
    for (; t < T; t++) {
      REQUIRE(in[t] == Tokenizer::PAD);
      REQUIRE(tg[t] == -1);
    }
    // A row is full only if the next candidate would not have fitted.
    if (seen < placed || b + 1 < packed.B) {
      int used = len;
      while (used < T && packed.inputs[b * T + used] != Tokenizer::PAD) used++;
      CHECK(used + static_cast<int>(drills[cand[seen]].tokens.size()) > T);
    }
  }
  CHECK(seen == placed);
  // The longest row (the level-2 problem) has no padding to fill; the level-1 rows do.
  CHECK(packed.inputs[0 * T + T - 1] != lt);
  // A candidate outside the drills is an error naming it.
  Batch again = plain;
  CHECK(tinyds_test::has(tinyds_test::error_of([&] { fill_padding_with_drills(again, drills, {7}); }), "candidate 0 = 7"));
}

TEST_CASE("data/pad_drills: fill_padding_with_drills: causal attention leaves the word problems' logits exactly as they were") {
  // Rows are packed, not masked: a drill sees the problem in front of it, but a problem position never sees later
  // positions, and MoE routing is per token. So every logit at a problem position must be the same. Not bitwise:
  // the expert GEMMs run over different token counts once drills join the slices, and GEMM blocking (so the order
  // of float additions) depends on the sizes. Tolerance 1e-5 (logits are O(1), float32 reassociation gives
  // ~1e-7..1e-6); a problem position that saw a drill would move by ~1e-2 or more.
  Config c = Config::preset("nano");  // MLA + MoE + MTP
  c.model.max_seq_len = 256;           // room for whole word problems (nano's own context is 64)
  Transformer<float> model(c.model);
  model.init_weights(3);
  const Tokenizer tok;
  const std::vector<Problem> ps = generate_problems(1, 4, 9, Split::train);
  std::vector<Problem> all = ps;
  all.push_back(generate_problems(2, 1, 9, Split::train)[0]);
  const std::vector<int> idx = {0, 4, 1, 2, 3};
  const int T = batch_columns(all, idx, c.model.max_seq_len);
  const Batch plain = make_batch(all, idx, tok, T, true);
  Batch packed = plain;
  const std::vector<PadDrill> drills = annotation_drills(all, tok);
  std::vector<int> cand;
  for (int k = 0; k < 50; k++) cand.push_back(k % static_cast<int>(drills.size()));
  REQUIRE(fill_padding_with_drills(packed, drills, cand) > 0);

  const int V = c.model.vocab_size;
  model.forward(plain.inputs.data(), plain.targets.data(), plain.B, T);
  const std::vector<float> before(model.logits(), model.logits() + static_cast<std::size_t>(plain.B) * T * V);
  model.forward(packed.inputs.data(), packed.targets.data(), packed.B, T);
  int compared = 0;
  double worst = 0;
  for (int b = 0; b < plain.B; b++) {
    for (int t = 0; t < T && plain.inputs[b * T + t] != Tokenizer::PAD; t++, compared++)
      for (int v = 0; v < V; v++) {
        const std::size_t i = (static_cast<std::size_t>(b) * T + t) * V + v;
        worst = std::max(worst, static_cast<double>(std::fabs(model.logits()[i] - before[i])));
      }
  }
  CHECK(compared > 100);
  CHECK(worst < 1e-5);
  MESSAGE("max |logit change| at problem positions: ", worst);
}
