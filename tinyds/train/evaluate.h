// tinyds/train/evaluate.h — held-out evaluation: greedy decoding, exact match of the final answer.
//
// For each problem the model sees <bos> question '\n' and greedily writes (kv-cache decoding) until <eos>; the completion is correct
// when the integer after its last "####" equals the problem's answer (parse_final_answer, DESIGN section 5).
#pragma once
#include <string>
#include <vector>

#include "tinyds/data/problem.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/model/transformer.h"

namespace tinyds {

struct EvalResult {
  int n = 0, correct = 0;
  int well_formed = 0;              // completions with a parseable "#### N" before <eos>
  double accuracy = 0;              // correct / n
  double mean_completion_len = 0;   // new tokens per problem (including <eos>)
  std::vector<std::string> examples;  // the first few "question -> completion" pairs, for the log
  std::vector<std::string> errors;    // the first few wrong ones: "question -> completion  (expected N)"
};

EvalResult evaluate_exact_match(Transformer<float>& model, const Tokenizer& tok, const std::vector<Problem>& problems,
                                int max_new_tokens = 96, int n_examples = 3, int n_errors = 0);

}  // namespace tinyds
