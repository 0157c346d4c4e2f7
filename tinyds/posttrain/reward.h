// tinyds/posttrain/reward.h — R1-style rule-based rewards (DESIGN section 5) and their per-group statistics.
//
// Shapes: N completions scored together, in groups of G consecutive completions of the same prompt (GRPO).
//
// A completion is the text the policy wrote after the prompt, decoded from its tokens, with its final <eos> (if
// any) removed; ended_with_eos says whether it was there (a completion cut off at max_new_tokens has none).
//
//   accuracy = 1  if the integer after the LAST "####" equals the problem's answer  (parse_final_answer)
//   format   = 1  if all of:  the completion ended with <eos>  (not truncated)
//                             "####" occurs exactly once, at the start of a line
//                             that line is a well-formed "#### N" (parse_final_answer accepts it: optional
//                               spaces, optional '-', digits or 1,000-style groups, then only whitespace, so
//                               nothing but blank lines may follow it)
//                             at least one non-blank reasoning line comes before it
//   steps    = 1  if every calculator annotation "<<E=c>>" holds: E (integers with + - * /, the usual precedence,
//                 division exact) evaluates to c, and the number written right after ">>" is c. A completion
//                 without annotations passes (there is nothing to check).
//   with check_steps (the default), accuracy is 1 only if steps is 1 as well: an answer reached through a wrong
//                 line ("16/8=<<16/8=2>>2", then "2/8=<<2/8=2>>2" landing on the right number by chance) is not
//                 rewarded. Without the check such lucky answers were every right level-3 sample of one demo SFT
//                 model (14 of 640), and GRPO reinforced them: wrong arithmetic, not a third step
//                 (notebooks/EXPERIMENTS.md, "Lucky answers").
//   total    = w_accuracy * accuracy + w_format * format             (R1: rule-based, equal weights 1 and 1)
//
// Accuracy alone does not look at <eos>, exactly like evaluate_exact_match (train/evaluate.h): a truncated
// completion whose text already ends in the right "#### N" counts as correct, and format is where truncation
// costs reward. Held-out exact match (train/evaluate.h) reads the final answer only, steps or not.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tinyds/data/tokenizer.h"

namespace tinyds {

struct RewardRules {
  double accuracy = 1.0;  // DeepSeek-R1 section 2.2.2 names the two rule-based rewards; DESIGN section 5 weighs
  double format = 1.0;    // them equally
  bool check_steps = true;  // accuracy only with every calculator annotation right (above)
};

struct RewardBreakdown {
  double accuracy = 0;              // 0 or 1
  double format = 0;                // 0 or 1
  double steps = 0;                 // 0 or 1: every calculator annotation holds
  double total = 0;                 // w.accuracy * accuracy + w.format * format
  std::optional<int64_t> parsed;    // the integer after the last "####", if any (what accuracy compared)
  bool ended_with_eos = false;
};

// The rules above on a decoded completion (text without its <eos>).
double accuracy_reward(const std::string& text, int64_t answer);
double format_reward(const std::string& text, bool ended_with_eos);
double steps_reward(const std::string& text);

// One calculator annotation "E=<<E=c>>c" of a completion: [begin, end) are the characters of its result, from c
// inside the annotation to the end of the number written after ">>" (both are forced once E is chosen), and right
// says whether the line holds (steps_reward's check). The GRPO update uses them for credit (grpo_trainer.h,
// credit_steps): a right result is not what made a wrong completion wrong.
struct StepCheck { std::size_t begin, end; bool right; };
// Every well-formed annotation of text, in order, up to the first malformed one; *well_formed (if given) says
// whether there was none. steps_reward(text) == 1 exactly when every check is right and the text is well formed.
std::vector<StepCheck> check_steps(const std::string& text, bool* well_formed = nullptr);
RewardBreakdown score_completion(const std::string& text, bool ended_with_eos, int64_t answer,
                                 const RewardRules& w = {});
// The same on completion tokens ids (n): ended_with_eos = (n > 0 and ids[n-1] == Tokenizer::EOS); the text is
// tok.decode of the ids before that <eos>.
RewardBreakdown score_completion_tokens(const int* ids, int n, const Tokenizer& tok, int64_t answer,
                                        const RewardRules& w = {});

// Statistics of N = n_groups * G rewards, group g being rewards[g*G .. (g+1)*G).
struct GroupStats {
  int G = 0, n_groups = 0;
  std::vector<double> mean;  // (n_groups)
  std::vector<double> std;   // (n_groups) unbiased (divides by G-1, as torch's .std() in trl's GRPO); 0 if G == 1
  int degenerate = 0;        // groups whose G rewards are all equal: GRPO advantage 0, no learning signal
                             // (DESIGN section 6: counted and logged; DAPO's dynamic sampling skips them)
  double mean_reward = 0;    // over all N
};
// Throws unless G >= 1 and rewards.size() is a positive multiple of G (naming both).
GroupStats group_stats(const std::vector<double>& rewards, int G);
std::vector<double> totals(const std::vector<RewardBreakdown>& r);  // r[i].total, for group_stats

}  // namespace tinyds
