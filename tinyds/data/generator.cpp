// tinyds/data/generator.cpp — GSM8K-style arithmetic problems from templates (see generator.h, DESIGN §5).
//
// Shapes: none (text only).
// One problem = a chain of `level` steps over one quantity r:  r0 = a;  r_k = r_{k-1} op_k b_k.
//   + and -:  b in 2..99 (level 4: 2..999); the first operand a is drawn from the same range
//   * and /:  b in 2..9; r * b <= 999; r / b exact and <= 999 (a first division draws a = b * q, q as above)
//   every r_k >= 0 (a subtraction never goes below zero)
// An operator that cannot apply to the current r (e.g. / when no b in 2..9 divides r) is not drawn: the op is
// chosen uniformly among those that can, which is the same as re-drawing until the step is valid.
// The answer has one line per step with a GSM8K calculator annotation, then the final line:
//   "12+7=<<12+7=19>>19\n19*3=<<19*3=57>>57\n#### 57"
// Splits: a question is in the test split when mix64(FNV-1a-64(question)) % 10 == 0 (about 10%).
#include "tinyds/data/generator.h"

#include <algorithm>
#include <unordered_set>

#include "tinyds/core/error.h"
#include "tinyds/core/rng.h"
#include "tinyds/data/templates.h"

namespace tinyds {

using data_detail::Name;
using data_detail::Template;

namespace {

constexpr int64_t kMaxMulDivResult = 999;  // DESIGN §5: results of * and / stay <= 999
constexpr int kTestBuckets = 10;           // 1 in 10 questions is a test question
// Longest full sequence <bos> question '\n' answer <eos>, in tokens, per level: level 1 must fit the demo's
// T = 128. A draw that would exceed it is re-drawn (rare: the templates are written to stay well inside).
constexpr int kMaxSequenceTokens[5] = {0, 128, 160, 256, 256};
// Within one call no question repeats, up to a budget: level 1 has a finite space (about 2.3 million
// questions, but * and / questions only about 112 thousand each), so a call may re-draw at most
// n + 1000 times in total because a question repeated; after that, repeats are accepted. This bounds the
// work at about twice the draws, whatever n. Level-1 train calls of up to ~500 thousand problems have no
// repeat (measured); level 2 and above have far larger spaces.
constexpr int64_t kRepeatBudgetSlack = 1000;

struct Step {
  char op;  // '+', '-', '*', '/'
  int64_t lhs, rhs, result;
};

int64_t max_add_operand(int level) { return level == 4 ? 999 : 99; }

// The first step: draws both operands so that the step is valid (re-drawing until it is).
Step draw_first_step(char op, int level, Rng& rng) {
  int64_t hi = max_add_operand(level);
  for (;;) {
    int64_t a, b;
    if (op == '/') {  // draw divisor and quotient, so the division is exact by construction
      b = rng.randint(2, 9);
      a = b * rng.randint(2, hi);
    } else {
      a = rng.randint(2, hi);
      b = (op == '*') ? rng.randint(2, 9) : rng.randint(2, hi);
    }
    if (op == '-' && b > a) continue;                   // result would be negative
    if (op == '*' && a * b > kMaxMulDivResult) continue;
    if (op == '/' && a > kMaxMulDivResult) continue;    // keep every number a level-4 reader sees <= 999 here
    int64_t r = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : a / b;
    return {op, a, b, r};
  }
}

// A later step on the running result r: only operators that can apply to r are candidates.
Step draw_next_step(int64_t r, int level, Rng& rng) {
  int64_t hi = max_add_operand(level);
  std::vector<int64_t> divisors;  // b in 2..9 with r % b == 0 and r / b <= 999
  for (int64_t b = 2; b <= 9 && r >= 2; b++)
    if (r % b == 0 && r / b <= kMaxMulDivResult) divisors.push_back(b);
  char ops[4];
  int n_ops = 0;
  ops[n_ops++] = '+';
  if (r >= 2) ops[n_ops++] = '-';                            // b >= 2 must not exceed r
  if (r >= 2 && 2 * r <= kMaxMulDivResult) ops[n_ops++] = '*';  // r >= 2: multiplying 0 or 1 teaches nothing
  if (!divisors.empty()) ops[n_ops++] = '/';
  char op = ops[rng.randint(0, n_ops - 1)];
  int64_t b;
  switch (op) {
    case '+': b = rng.randint(2, hi); return {op, r, b, r + b};
    case '-': b = rng.randint(2, std::min(hi, r)); return {op, r, b, r - b};
    case '*': b = rng.randint(2, std::min<int64_t>(9, kMaxMulDivResult / r)); return {op, r, b, r * b};
    default: b = divisors[rng.randint(0, static_cast<int64_t>(divisors.size()) - 1)]; return {op, r, b, r / b};
  }
}

std::vector<Step> draw_chain(int level, Rng& rng) {
  static const char kOps[4] = {'+', '-', '*', '/'};
  std::vector<Step> steps;
  steps.push_back(draw_first_step(kOps[rng.randint(0, 3)], level, rng));
  for (int k = 1; k < level; k++) steps.push_back(draw_next_step(steps.back().result, level, rng));
  return steps;
}

int op_index(char op) { return op == '+' ? 0 : op == '-' ? 1 : op == '*' ? 2 : 3; }

std::string render_question(const Template& t, const Name& who, const std::vector<Step>& steps) {
  auto subject_of = [&](size_t k) {
    return t.steps[k] ? data_detail::fill(t.steps[k], who, "", "", "") : std::string();
  };
  std::string q = data_detail::fill(t.start, who, std::to_string(steps[0].lhs), "", "") + " ";
  std::string clauses = data_detail::fill(t.subject, who, "", "", "");
  for (size_t k = 0; k < steps.size(); k++) {
    if (k > 0) clauses += (k + 1 == steps.size()) ? t.last_join : ", ";
    else if (!clauses.empty()) clauses += " ";
    clauses += data_detail::fill(t.clause[op_index(steps[k].op)], who, "", std::to_string(steps[k].rhs),
                                 subject_of(k));
  }
  if (clauses[0] >= 'a' && clauses[0] <= 'z') clauses[0] = static_cast<char>(clauses[0] - 'a' + 'A');
  q += clauses + ". ";
  q += data_detail::fill(t.question, who, "", "", subject_of(steps.size() - 1));
  return q;
}

std::string render_answer(const std::vector<Step>& steps) {
  std::string a;
  for (const Step& s : steps) {
    // GSM8K writes '*' inside the calculator annotation; we use it outside too, so one symbol means multiply.
    std::string expr = std::to_string(s.lhs) + s.op + std::to_string(s.rhs);
    std::string res = std::to_string(s.result);
    a += expr + "=<<" + expr + "=" + res + ">>" + res + "\n";
  }
  return a + "#### " + std::to_string(steps.back().result);
}

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 14695981039346656037ull;  // FNV offset basis
  for (unsigned char c : s) { h ^= c; h *= 1099511628211ull; }  // FNV prime
  return h;
}

}  // namespace

Split parse_split(const std::string& s) {
  if (s == "train") return Split::train;
  if (s == "test") return Split::test;
  throw_error("split '", s, "' is not one of: train, test");
}

bool is_test_question(const std::string& question) {
  // mix64 spreads FNV's low bits, which alone are weak for a modulus.
  return mix64(fnv1a64(question)) % kTestBuckets == 0;
}

int num_templates() { return static_cast<int>(data_detail::templates().size()); }

std::vector<Problem> generate_problems(int level, int n, uint64_t seed, Split split) {
  if (level < 1 || level > 4) throw_error("generate_problems: level ", level, " is out of range (levels are 1..4)");
  if (n < 0) throw_error("generate_problems: n = ", n, " is negative");
  const auto& tpls = data_detail::templates();
  const auto& who = data_detail::names();
  Rng rng(seed, /*stream=*/static_cast<uint64_t>(level));  // each level its own stream: levels never correlate
  const bool want_test = split == Split::test;

  std::vector<Problem> out;
  out.reserve(n);
  std::unordered_set<std::string> seen;
  seen.reserve(static_cast<size_t>(n) * 2);
  int64_t repeat_budget = static_cast<int64_t>(n) + kRepeatBudgetSlack;  // re-draws left for repeats
  while (static_cast<int>(out.size()) < n) {
    const Template& t = tpls[rng.randint(0, static_cast<int64_t>(tpls.size()) - 1)];
    const Name& name = who[rng.randint(0, static_cast<int64_t>(who.size()) - 1)];
    std::vector<Step> steps = draw_chain(level, rng);
    Problem p;
    p.question = render_question(t, name, steps);
    if (is_test_question(p.question) != want_test) continue;  // the other split's problem
    p.answer = render_answer(steps);
    // One token per character plus <bos>, '\n', <eos> (the tokenizer is character level).
    if (static_cast<int>(p.question.size() + p.answer.size()) + 3 > kMaxSequenceTokens[level]) continue;
    if (!seen.insert(p.question).second && repeat_budget > 0) { repeat_budget--; continue; }
    p.final_answer = steps.back().result;
    p.level = level;
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace tinyds
