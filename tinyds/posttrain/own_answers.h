// tinyds/posttrain/own_answers.h — preference pairs from a model's own mistakes, for `tinyds dpo` and `tinyds rm`:
// the problem's right solution (chosen) against the model's own greedy answer where the rule reward calls it wrong
// (rejected). SPIN's pairs (Chen et al. 2024, arXiv 2401.01335: the data's answer against the model's own); such a
// pair differs from the first token the model gets wrong, so it contrasts the shape of a solution (a step left out,
// the wrong operation) as well as one line's result, where preference.h's corrupted copies change one number.
//
// Shapes: P problems per call; their greedy completions are at most max_new_tokens tokens.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "tinyds/data/problem.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/model/transformer.h"

namespace tinyds {

// Where a pair's rejected solution comes from: a corrupted copy of the right one (preference.h) or the model's own
// wrong answer (below).
enum class PairSource { corrupted, own };
PairSource parse_pair_source(const std::string& s);  // "corrupted" | "own"; error naming --rejected and the value
const char* pair_source_name(PairSource s);

// For each problem, the model's greedy completion (kv-cache decoding as the held-out evaluation's; its <eos>
// dropped) as a rejected row (same question, final_answer what it says) when score_completion (reward.h, steps rule
// on) finds it wrong; nullopt when it is right.
std::vector<std::optional<Problem>> own_wrong_answers(const Transformer<float>& model, const Tokenizer& tok,
                                                     const std::vector<Problem>& problems, int max_new_tokens);

// A step's pairs: rounds of P problems of pool, in `order` from position *next (advanced past every problem decoded,
// wrapping around), until P of them have a wrong answer or `rounds` rounds are done. Returns the pair rows, the
// chosen ones then their rejected ones (fewer than P pairs when the rounds found fewer; none when every answer was
// right); *drawn (if given) counts the problems decoded.
std::vector<Problem> own_pair_rows(const Transformer<float>& model, const Tokenizer& tok,
                                   const std::vector<Problem>& pool, const std::vector<int>& order, long* next, int P,
                                   int rounds, int max_new_tokens,
                                   int* drawn = nullptr);

}  // namespace tinyds
