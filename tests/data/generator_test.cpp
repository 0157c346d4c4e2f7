// tests/data/generator_test.cpp — the GSM8K-style generator: arithmetic, levels, lengths, determinism, splits.
//
// The arithmetic checks re-parse each answer line and recompute it here, independently of the generator.
#include <doctest/doctest.h>

#include "tests/util/error_util.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/data/generator.h"
#include "tinyds/data/problem.h"
#include "tinyds/data/tokenizer.h"

using tinyds::Problem;
using tinyds::Split;

namespace {

#if defined(__has_feature)
#if __has_feature(address_sanitizer)  // clang's spelling
#define TINYDS_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(TINYDS_TEST_ASAN)
constexpr bool kSanitized = true;  // ASan makes string work several times slower: the large-n test shrinks
#else
constexpr bool kSanitized = false;
#endif

using tinyds_test::error_of;
using tinyds_test::has;

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

struct ParsedStep {
  long long lhs, rhs, result;
  char op;
};

// "12+7=<<12+7=19>>19" -> {12, 7, 19, '+'}; checks the expression outside and inside <<>> agree.
bool parse_step(const std::string& line, ParsedStep& s) {
  long long l2, r2, c2;
  char op2;
  int used = -1;
  if (std::sscanf(line.c_str(), "%lld%c%lld=<<%lld%c%lld=%lld>>%lld%n", &s.lhs, &s.op, &s.rhs, &l2, &op2, &r2,
                  &s.result, &c2, &used) != 8)
    return false;
  return used == static_cast<int>(line.size()) && l2 == s.lhs && op2 == s.op && r2 == s.rhs && c2 == s.result;
}

// The numbers stated in a question, in order, leaving out the "1" of a fraction "1/3".
std::vector<long long> question_numbers(const std::string& q) {
  std::vector<long long> out;
  for (size_t i = 0; i < q.size();) {
    if (!isdigit(static_cast<unsigned char>(q[i]))) { i++; continue; }
    size_t j = i;
    while (j < q.size() && isdigit(static_cast<unsigned char>(q[j]))) j++;
    if (j >= q.size() || q[j] != '/') out.push_back(std::stoll(q.substr(i, j - i)));
    i = j;
  }
  return out;
}

// Checks one generated problem of `level` against DESIGN §5, recomputing every step.
void check_problem(const Problem& p, int level) {
  INFO("question: ", p.question, "\nanswer: ", p.answer);
  const long long hi = level == 4 ? 999 : 99;  // + and - operand range
  std::vector<std::string> lines = lines_of(p.answer);
  REQUIRE(static_cast<int>(lines.size()) == level + 1);  // one line per operation, then "#### N"
  std::vector<long long> stated = {};                     // operands in the order the question must state them
  long long prev = -1;
  for (int k = 0; k < level; k++) {
    ParsedStep s;
    REQUIRE(parse_step(lines[k], s));
    long long expect;
    switch (s.op) {
      case '+': expect = s.lhs + s.rhs; CHECK(s.rhs >= 2); CHECK(s.rhs <= hi); break;
      case '-': expect = s.lhs - s.rhs; CHECK(s.rhs >= 2); CHECK(s.rhs <= hi); break;
      case '*': expect = s.lhs * s.rhs; CHECK(s.rhs >= 2); CHECK(s.rhs <= 9); CHECK(expect <= 999); break;
      case '/':
        REQUIRE(s.rhs >= 2);
        CHECK(s.rhs <= 9);
        CHECK(s.lhs % s.rhs == 0);  // exact division only
        expect = s.lhs / s.rhs;
        CHECK(expect <= 999);
        break;
      default: FAIL("unknown operator '", s.op, "'"); return;
    }
    CHECK(s.result == expect);
    CHECK(s.result >= 0);
    if (k == 0) {
      CHECK(s.lhs >= 2);
      CHECK(s.lhs <= (s.op == '/' ? 999 : hi));
      stated.push_back(s.lhs);
    } else {
      CHECK(s.lhs == prev);  // each later step uses the previous result
    }
    stated.push_back(s.rhs);
    prev = s.result;
  }
  CHECK(lines.back() == "#### " + std::to_string(prev));
  CHECK(p.final_answer == prev);
  CHECK(tinyds::parse_final_answer(p.answer) == std::optional<int64_t>(prev));
  CHECK(p.level == level);
  CHECK(question_numbers(p.question) == stated);
}

}  // namespace

TEST_CASE("data/generator: every step is correct arithmetic within the level's ranges") {
  for (int level = 1; level <= 4; level++) {
    std::vector<Problem> ps = tinyds::generate_problems(level, 2000, 7, Split::train);
    REQUIRE(ps.size() == 2000);
    std::set<char> ops;
    for (const Problem& p : ps) {
      check_problem(p, level);
      for (char c : p.answer) if (c == '+' || c == '-' || c == '*' || c == '/') ops.insert(c);
    }
    CHECK(ops.size() == 4);  // all four operators occur at every level
  }
}

TEST_CASE("data/generator: full sequences fit the training lengths") {
  // Budgets from the demo: level 1 trains at T = 128; one token per character plus <bos>, '\n', <eos>.
  const int budget[5] = {0, 128, 160, 256, 256};
  tinyds::Tokenizer tok;
  for (int level = 1; level <= 4; level++) {
    std::vector<Problem> ps = tinyds::generate_problems(level, 2000, 11, Split::train);
    size_t longest_q = 0, shortest_q = SIZE_MAX;
    for (const Problem& p : ps) {
      // encode() also proves every character is in the vocabulary.
      size_t tokens = 1 + tok.encode(tinyds::prompt_text(p)).size() + tok.encode(p.answer).size() + 1;
      CHECK_MESSAGE(static_cast<int>(tokens) <= budget[level], p.question);
      longest_q = std::max(longest_q, p.question.size());
      shortest_q = std::min(shortest_q, p.question.size());
    }
    if (level == 1) {  // short questions: the model reads every character at every step
      CHECK(shortest_q >= 40);
      CHECK(longest_q <= 90);
    }
    CHECK(longest_q < 200);
  }
}

TEST_CASE("data/generator: deterministic by (level, seed), prefix-stable, seeds differ") {
  for (int level = 1; level <= 4; level++) {
    std::vector<Problem> a = tinyds::generate_problems(level, 300, 42, Split::train);
    std::vector<Problem> b = tinyds::generate_problems(level, 300, 42, Split::train);
    std::vector<Problem> prefix = tinyds::generate_problems(level, 50, 42, Split::train);
    std::vector<Problem> other = tinyds::generate_problems(level, 300, 43, Split::train);
    int same_as_other = 0;
    for (size_t i = 0; i < a.size(); i++) {
      CHECK(a[i].question == b[i].question);
      CHECK(a[i].answer == b[i].answer);
      CHECK(a[i].final_answer == b[i].final_answer);
      if (i < prefix.size()) CHECK(prefix[i].question == a[i].question);
      same_as_other += a[i].question == other[i].question;
    }
    CHECK(same_as_other == 0);  // a different seed gives different problems
  }
}

TEST_CASE("data/generator: train and test never share a question") {
  std::vector<Problem> train = tinyds::generate_problems(1, 3000, 5, Split::train);
  std::vector<Problem> test = tinyds::generate_problems(1, 1000, 5, Split::test);
  std::vector<Problem> test_other_seed = tinyds::generate_problems(1, 1000, 99, Split::test);
  std::set<std::string> train_q;
  for (const Problem& p : train) {
    CHECK_FALSE(tinyds::is_test_question(p.question));
    train_q.insert(p.question);
  }
  for (const auto* set : {&test, &test_other_seed})
    for (const Problem& p : *set) {
      CHECK(tinyds::is_test_question(p.question));
      CHECK(train_q.count(p.question) == 0);
    }
  // The hash rule puts about 1 question in 10 in the test split. Over 20000 strings the binomial standard
  // deviation of the fraction is 0.0021, so [0.08, 0.12] is a ~9-sigma band: fails only if the rule is wrong.
  int n_test = 0;
  for (int i = 0; i < 20000; i++) n_test += tinyds::is_test_question("Question number " + std::to_string(i) + "?");
  CHECK(n_test / 20000.0 >= 0.08);
  CHECK(n_test / 20000.0 <= 0.12);
}

TEST_CASE("data/generator: no repeated question among 100000 level-1 problems") {
  const int n = kSanitized ? 20000 : 100000;
  std::vector<Problem> ps = tinyds::generate_problems(1, n, 1, Split::train);
  REQUIRE(static_cast<int>(ps.size()) == n);
  std::set<std::string> distinct;
  for (const Problem& p : ps) distinct.insert(p.question);
  CHECK(static_cast<int>(distinct.size()) == n);
  CHECK(tinyds::generate_problems(3, 0, 1, Split::test).empty());
}

TEST_CASE("data/generator: at least 8 templates, all of them in use") {
  REQUIRE(tinyds::num_templates() >= 8);
  // Each template opens with its own sentence; with the subject word and the digits removed, the opening
  // identifies the template ("Tom has 12 apples." -> "has # apples.").
  std::set<std::string> openings;
  for (const Problem& p : tinyds::generate_problems(1, 2000, 3, Split::train)) {
    std::string first = p.question.substr(0, p.question.find('.') + 1);
    first = first.substr(first.find(' ') + 1);
    std::string skeleton;
    for (char c : first)
      if (!isdigit(static_cast<unsigned char>(c))) skeleton += c;
      else if (skeleton.empty() || skeleton.back() != '#') skeleton += '#';
    openings.insert(skeleton);
  }
  CHECK(static_cast<int>(openings.size()) == tinyds::num_templates());
}

TEST_CASE("data/generator: bad arguments are errors naming the value") {
  CHECK(has(error_of([] { tinyds::generate_problems(0, 10, 1, Split::train); }), "level 0"));
  CHECK(has(error_of([] { tinyds::generate_problems(5, 10, 1, Split::train); }), "level 5"));
  CHECK(has(error_of([] { tinyds::generate_problems(1, -3, 1, Split::train); }), "-3"));
  CHECK(tinyds::parse_split("train") == Split::train);
  CHECK(tinyds::parse_split("test") == Split::test);
  CHECK(has(error_of([] { tinyds::parse_split("valid"); }), "'valid'"));
  CHECK(has(error_of([] { tinyds::parse_split("Train"); }), "'Train'"));
}
