// tinyds/posttrain/reward.cpp — see reward.h.
//
// Shapes: N completions, G per group. Text only; the "####" parsing is data/problem.h's parse_final_answer,
// shared with the data reader and evaluate_exact_match so that "correct" means the same thing everywhere.
#include "tinyds/posttrain/reward.h"

#include <cctype>
#include <cmath>

#include "tinyds/core/error.h"
#include "tinyds/data/problem.h"

namespace tinyds {

namespace {

bool has_non_blank(const std::string& s, std::size_t begin, std::size_t end) {
  for (std::size_t i = begin; i < end; i++)
    if (!std::isspace(static_cast<unsigned char>(s[i]))) return true;
  return false;
}

// Integer arithmetic over [pos, end) of s: + - * / with the usual precedence, left to right, optional spaces, a
// leading '-' on a number. nullopt on anything else, on overflow and on a division that is not exact.
class Arithmetic {
 public:
  Arithmetic(const std::string& s, std::size_t pos, std::size_t end) : s_(s), pos_(pos), end_(end) {}
  std::optional<int64_t> whole() {
    std::optional<int64_t> v = sum();
    skip_spaces();
    return v && pos_ == end_ ? v : std::nullopt;
  }
  std::size_t position() const { return pos_; }
  // A number at pos (optional '-', digits); nullopt if there is none or it overflows.
  std::optional<int64_t> number() {
    skip_spaces();
    const bool negative = pos_ < end_ && s_[pos_] == '-';
    if (negative) pos_++;
    if (pos_ >= end_ || !std::isdigit(static_cast<unsigned char>(s_[pos_]))) return std::nullopt;
    int64_t v = 0;
    for (; pos_ < end_ && std::isdigit(static_cast<unsigned char>(s_[pos_])); pos_++)
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s_[pos_] - '0', &v)) return std::nullopt;
    return negative ? -v : v;
  }

 private:
  void skip_spaces() { while (pos_ < end_ && s_[pos_] == ' ') pos_++; }
  bool next_is(char c) { skip_spaces(); return pos_ < end_ && s_[pos_] == c; }
  std::optional<int64_t> sum() {
    std::optional<int64_t> v = product();
    while (v && (next_is('+') || next_is('-'))) {
      const char op = s_[pos_++];
      const std::optional<int64_t> w = product();
      int64_t r;
      if (!w || (op == '+' ? __builtin_add_overflow(*v, *w, &r) : __builtin_sub_overflow(*v, *w, &r))) return std::nullopt;
      v = r;
    }
    return v;
  }
  std::optional<int64_t> product() {
    std::optional<int64_t> v = number();
    while (v && (next_is('*') || next_is('/'))) {
      const char op = s_[pos_++];
      const std::optional<int64_t> w = number();
      if (!w) return std::nullopt;
      int64_t r;
      if (op == '*') {
        if (__builtin_mul_overflow(*v, *w, &r)) return std::nullopt;
      } else {
        if (*w == 0 || *v % *w != 0) return std::nullopt;  // the data's divisions are exact
        r = *v / *w;
      }
      v = r;
    }
    return v;
  }
  const std::string& s_;
  std::size_t pos_, end_;
};

}  // namespace

std::vector<StepCheck> check_steps(const std::string& text, bool* well_formed) {
  std::size_t bad_at;
  const std::vector<Annotation> annotations = find_annotations(text, &bad_at);  // data/problem.h
  if (well_formed) *well_formed = bad_at == std::string::npos;  // "<<12+7=19" never closed, or no "=c" inside
  std::vector<StepCheck> out;
  for (const auto [open, eq, close] : annotations) {
    const std::optional<int64_t> lhs = Arithmetic(text, open + 2, eq).whole();
    const std::optional<int64_t> c = Arithmetic(text, eq + 1, close).whole();
    Arithmetic after(text, close + 2, text.size());
    const std::optional<int64_t> written = after.number();
    // "16/8=<<16/8=3>>": the line's own sum is wrong; "<<16/8=2>>3": a different number carried on.
    const bool right = lhs && c && *lhs == *c && written && *written == *c;
    out.push_back({eq + 1, written ? after.position() : close + 2, right});
  }
  return out;
}

double steps_reward(const std::string& text) {
  bool well_formed;
  for (const StepCheck& s : check_steps(text, &well_formed))
    if (!s.right) return 0.0;
  return well_formed ? 1.0 : 0.0;
}

double accuracy_reward(const std::string& text, int64_t answer) {
  std::optional<int64_t> got = parse_final_answer(text);  // the LAST "####"
  return got && *got == answer ? 1.0 : 0.0;
}

double format_reward(const std::string& text, bool ended_with_eos) {
  if (!ended_with_eos) return 0.0;  // truncated at max_new_tokens: the model never finished its answer
  const std::size_t hash = text.find("####");
  if (hash == std::string::npos) return 0.0;
  // Exactly one marker. Searching from hash + 1 also rejects "#####", which overlaps itself.
  if (text.find("####", hash + 1) != std::string::npos) return 0.0;
  // The marker starts its line, and that line is not the first: reasoning must come before the answer.
  const std::size_t newline = hash == 0 ? std::string::npos : text.rfind('\n', hash - 1);
  if (newline == std::string::npos) return 0.0;       // the answer line is the first line
  if (newline + 1 != hash) return 0.0;                // "so #### 5": text before the marker on its line
  if (!has_non_blank(text, 0, newline)) return 0.0;   // only blank lines before the answer
  // "#### N" then only whitespace to the end: parse_final_answer's own definition of well-formed.
  return parse_final_answer(text.substr(hash)).has_value() ? 1.0 : 0.0;
}

RewardBreakdown score_completion(const std::string& text, bool ended_with_eos, int64_t answer,
                                 const RewardRules& w) {
  RewardBreakdown r;
  r.parsed = parse_final_answer(text);
  r.ended_with_eos = ended_with_eos;
  r.steps = steps_reward(text);
  r.accuracy = w.check_steps && r.steps == 0 ? 0.0 : accuracy_reward(text, answer);
  r.format = format_reward(text, ended_with_eos);
  r.total = w.accuracy * r.accuracy + w.format * r.format;
  return r;
}

RewardBreakdown score_completion_tokens(const int* ids, int n, const Tokenizer& tok, int64_t answer,
                                        const RewardRules& w) {
  if (n < 0) throw_error("score_completion_tokens: n = ", n, " must be >= 0");
  const bool eos = n > 0 && ids[n - 1] == Tokenizer::EOS;
  const std::string text = tok.decode(std::vector<int>(ids, ids + (eos ? n - 1 : n)));
  return score_completion(text, eos, answer, w);
}

GroupStats group_stats(const std::vector<double>& rewards, int G) {
  const std::size_t N = rewards.size();
  if (G < 1) throw_error("group_stats: group size G = ", G, " must be at least 1");
  if (N == 0 || N % G != 0)
    throw_error("group_stats: ", N, " rewards is not a positive multiple of the group size G = ", G);
  GroupStats s;
  s.G = G;
  s.n_groups = static_cast<int>(N / G);
  s.mean.assign(s.n_groups, 0.0);
  s.std.assign(s.n_groups, 0.0);
  double sum_all = 0;
  for (int g = 0; g < s.n_groups; g++) {
    const double* r = rewards.data() + static_cast<std::size_t>(g) * G;
    double sum = 0;
    bool all_equal = true;
    for (int i = 0; i < G; i++) { sum += r[i]; all_equal = all_equal && r[i] == r[0]; }
    const double mean = sum / G;
    double ss = 0;
    for (int i = 0; i < G; i++) ss += (r[i] - mean) * (r[i] - mean);
    s.mean[g] = mean;
    s.std[g] = G > 1 ? std::sqrt(ss / (G - 1)) : 0.0;  // unbiased, like torch.std (trl's GRPO)
    if (all_equal) s.degenerate++;
    sum_all += sum;
  }
  s.mean_reward = sum_all / static_cast<double>(N);
  return s;
}

std::vector<double> totals(const std::vector<RewardBreakdown>& r) {
  std::vector<double> t(r.size());
  for (std::size_t i = 0; i < r.size(); i++) t[i] = r[i].total;
  return t;
}

}  // namespace tinyds
