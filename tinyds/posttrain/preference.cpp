// tinyds/posttrain/preference.cpp — see preference.h.
//
// Shapes: P pairs, B = 2P rows, T columns.
#include "tinyds/posttrain/preference.h"

#include <algorithm>

#include "tinyds/core/error.h"
#include "tinyds/core/rng.h"
#include "tinyds/posttrain/reward.h"

namespace tinyds {

const char* pair_corruption_name(PairCorruption c) {
  switch (c) {
    case PairCorruption::final_answer: return "final";
    case PairCorruption::intermediate: return "intermediate";
    case PairCorruption::mixed: return "mixed";
  }
  return "?";
}

PairCorruption parse_pair_corruption(const std::string& s) {
  if (s == "final") return PairCorruption::final_answer;
  if (s == "intermediate") return PairCorruption::intermediate;
  if (s == "mixed") return PairCorruption::mixed;
  throw_error("--corruption '", s, "' is not one of: final, intermediate, mixed");
}

namespace {

// v + d with d = +-1..9 from the draw's low bits; never v, never negative (a '-' the solutions never contain).
int64_t wrong_value(int64_t v, uint64_t draw) {
  const int64_t d = 1 + static_cast<int64_t>(draw % 9);
  const bool down = (draw >> 8) & 1;
  return (down && v - d >= 0) ? v - d : v + d;
}

// The answer with its last "#### N" replaced by "#### wrong".
std::string with_final(const std::string& answer, int64_t wrong) {
  const std::size_t at = answer.rfind("####");
  if (at == std::string::npos) throw_error("corrupt_solution: answer has no '####': \"", answer, "\"");
  return answer.substr(0, at) + "#### " + std::to_string(wrong);
}

// Line spans [begin, end) of the step lines "expr=<<expr=res>>res" (those with a calculator annotation).
std::vector<std::pair<std::size_t, std::size_t>> step_lines(const std::string& answer) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::size_t begin = 0;
  while (begin < answer.size()) {
    std::size_t end = answer.find('\n', begin);
    if (end == std::string::npos) end = answer.size();
    const std::string line = answer.substr(begin, end - begin);
    if (line.find("<<") != std::string::npos && line.find(">>") != std::string::npos) out.push_back({begin, end});
    begin = end + 1;
  }
  return out;
}

}  // namespace

Problem corrupt_solution(const Problem& p, PairCorruption kind, uint64_t draw) {
  Problem bad = p;
  if (kind == PairCorruption::mixed) kind = ((draw >> 16) & 1) ? PairCorruption::intermediate : PairCorruption::final_answer;
  const auto steps = step_lines(p.answer);
  if (kind == PairCorruption::final_answer || steps.empty()) {  // no annotated step: only the final number can be wrong
    bad.final_answer = wrong_value(p.final_answer, draw);
    bad.answer = with_final(p.answer, bad.final_answer);
    return bad;
  }
  // One step's result, in the annotation and after it: "a+b=<<a+b=r>>r rest" -> "a+b=<<a+b=r'>>r' rest".
  const std::size_t k = static_cast<std::size_t>((draw >> 24) % steps.size());
  const auto [begin, end] = steps[k];
  const std::string line = p.answer.substr(begin, end - begin);
  const std::size_t close = line.find(">>");
  const std::size_t eq = line.rfind('=', close);
  const std::string res = line.substr(eq + 1, close - eq - 1);
  int64_t v = 0;
  try {
    v = std::stoll(res);
  } catch (const std::exception&) {
    throw_error("corrupt_solution: step \"", line, "\" has no integer result");
  }
  const int64_t w = wrong_value(v, draw);
  const std::string rest = line.compare(close + 2, res.size(), res) == 0 ? line.substr(close + 2 + res.size())
                                                                          : line.substr(close + 2);
  const std::string new_line = line.substr(0, eq + 1) + std::to_string(w) + ">>" + std::to_string(w) + rest;
  bad.answer = p.answer.substr(0, begin) + new_line + p.answer.substr(end);
  // The last step's result is the final answer: a wrong last step also makes the "####" number wrong.
  if (k + 1 == steps.size() && v == p.final_answer) {
    bad.final_answer = w;
    bad.answer = with_final(bad.answer, w);
  }
  return bad;
}

std::vector<Problem> preference_rows(const std::vector<Problem>& chosen, PairCorruption kind, uint64_t seed) {
  std::vector<Problem> rows = chosen;
  const Rng rng(seed, 0x9a15);
  for (std::size_t i = 0; i < chosen.size(); i++) rows.push_back(corrupt_solution(chosen[i], kind, rng.at(i)));
  return rows;
}

bool only_final_line_differs(const Problem& chosen, const Problem& rejected) {
  const std::size_t c = chosen.answer.rfind("####"), r = rejected.answer.rfind("####");
  if (c == std::string::npos || c != r || chosen.answer == rejected.answer) return false;
  return chosen.answer.compare(0, c, rejected.answer, 0, r) == 0;
}

Batch preference_batch(const std::vector<Problem>& rows, const Tokenizer& tok, int max_T) {
  std::vector<int> idx(rows.size());
  for (std::size_t i = 0; i < rows.size(); i++) idx[i] = static_cast<int>(i);
  return make_batch(rows, idx, tok, batch_columns(rows, idx, max_T), /*mask_prompt=*/true);
}

std::vector<std::pair<std::size_t, std::size_t>> spared_results(const std::string& chosen, const std::string& rejected) {
  std::size_t d = 0;
  while (d < chosen.size() && d < rejected.size() && chosen[d] == rejected[d]) d++;
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (const StepCheck& c : check_steps(rejected))
    if (c.right && c.begin >= d) out.push_back({c.begin, c.end});
  return out;
}

void mask_answer_spans(Batch& b, const std::vector<Problem>& rows,
                       const std::vector<std::vector<std::pair<std::size_t, std::size_t>>>& spans) {
  if (spans.size() != rows.size() || static_cast<int>(rows.size()) != b.B)
    throw_error("mask_answer_spans: ", spans.size(), " span lists and ", rows.size(), " rows for a batch of ", b.B);
  for (int r = 0; r < b.B; r++)
    for (const auto& [begin, end] : spans[r]) {
      if (end > rows[r].answer.size() || begin > end)
        throw_error("mask_answer_spans: span [", begin, ", ", end, ") outside row ", r, "'s answer of ",
                    rows[r].answer.size(), " characters");
      // Inputs are <bos> question '\n' answer: answer character i is predicted by the target at column q + 1 + i.
      const std::size_t q = rows[r].question.size();
      for (std::size_t i = begin; i < end; i++)
        if (q + 1 + i < static_cast<std::size_t>(b.T)) b.targets[static_cast<std::size_t>(r) * b.T + q + 1 + i] = -1;
    }
}

std::vector<int> last_target_positions(const Batch& b) {
  std::vector<int> last(b.B, -1);
  for (int r = 0; r < b.B; r++)
    for (int t = 0; t < b.T; t++)
      if (b.targets[static_cast<std::size_t>(r) * b.T + t] >= 0) last[r] = t;
  return last;
}

bool fits_in_context(const Problem& p, int max_seq_len, int spare) {
  // inputs are <bos> question '\n' answer (the <eos> is only a target): question + answer + 2 positions
  return static_cast<int>(p.question.size() + p.answer.size()) + 2 + spare <= max_seq_len;
}

}  // namespace tinyds
