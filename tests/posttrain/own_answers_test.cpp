// tests/posttrain/own_answers_test.cpp — pairs from a model's own mistakes (posttrain/own_answers.h): the rejected
// row is exactly the model's greedy answer where the rule reward calls it wrong, and there is none where it is right.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "tests/util/error_util.h"
#include "tests/util/one_problem_ckpt.h"
#include "tinyds/data/batch.h"
#include "tinyds/data/generator.h"
#include "tinyds/model/sampling.h"
#include "tinyds/posttrain/own_answers.h"
#include "tinyds/train/checkpoint.h"

using namespace tinyds;
using tinyds_test::error_of;
using tinyds_test::has;

TEST_CASE("posttrain/own_answers: the model's own greedy answer is the rejected row where it is wrong, none where right") {
  // The one-problem checkpoint writes the problem's worked solution exactly, then a final number (tests/util). Two
  // problems ask its question: one whose answer is the number the model's greedy completion ends on (the model is
  // right: no rejected row), one whose answer is that number + 5 (the model is wrong: its own completion is the
  // rejected row). The greedy completion is computed here by generate(), which recomputes the whole sequence per
  // token, independently of the kv-cache rollout that own_wrong_answers decodes with.
  const LoadedCheckpoint ck = load_checkpoint(tinyds::test::one_problem_ckpt());
  Transformer<float> policy(ck.config.model, Role::policy);
  load_params_into(ck, policy);
  const Tokenizer& tok = ck.tokenizer;
  const Problem p = generate_problems(1, 1, tinyds::test::kOneProblemSeed + 7919ull, Split::train).at(0);
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  greedy.max_new_tokens = 40;
  std::vector<int> ids = generate(policy, {encode_prompt(p, tok)}, greedy, tok.vocab_size(), Tokenizer::EOS,
                                  Tokenizer::PAD).at(0);
  REQUIRE(!ids.empty());
  REQUIRE(ids.back() == Tokenizer::EOS);
  ids.pop_back();
  const std::string text = tok.decode(ids);
  const std::optional<int64_t> said = parse_final_answer(text);
  REQUIRE(said.has_value());  // the checkpoint writes a well-formed solution (tests/util/one_problem_ckpt.h)
  auto with_answer = [&](int64_t v) {
    Problem q = p;
    q.final_answer = v;
    q.answer = p.answer.substr(0, p.answer.rfind("#### ")) + "#### " + std::to_string(v);
    return q;
  };
  const std::vector<Problem> problems = {with_answer(*said), with_answer(*said + 5)};
  const std::vector<std::optional<Problem>> own = own_wrong_answers(policy, tok, problems, 40);
  REQUIRE(own.size() == 2);
  CHECK(!own[0].has_value());  // the model is right here: no pair
  REQUIRE(own[1].has_value());
  CHECK(own[1]->question == p.question);
  CHECK(own[1]->answer == text);  // the model's own answer, its <eos> dropped
  CHECK(own[1]->final_answer == *said);
  MESSAGE("own rejected: \"" << text << "\" against \"" << problems[1].answer << "\"");
  CHECK(has(error_of([] { parse_pair_source("sampled"); }), "--rejected 'sampled'"));
}

