// tinyds/train/evaluate.h — held-out evaluation: greedy decoding, exact match of the final answer.
//
// For each problem the model sees <bos> question '\n' and greedily writes (kv-cache decoding) until <eos>; the completion is correct
// when the integer after its last "####" equals the problem's answer (parse_final_answer, DESIGN section 5).
//
// A model on cuda decodes on the device when its attention is MLA (the device Decoder's absorbed path,
// model/decoder.h). The device Decoder has no kernel for the dense kinds' decode attention (mha/gqa/mqa), so such a
// model is evaluated through a CPU copy of its parameters and router biases (decode_model, cpu_copy_of), copied to
// the host once per evaluation.
#pragma once
#include <memory>
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
  std::vector<char> right;          // (n) 1 where problem i was answered right (train/paired_change.h compares two)
  std::vector<int> lines;           // lines[k]: completions with k well-formed calculator annotations
                                    // (data/problem.h find_annotations): a level-L problem takes L
  // The share of completions with exactly k calculator lines (0 when none was evaluated).
  double share_with_lines(int k) const {
    return n && k >= 0 && k < static_cast<int>(lines.size()) ? static_cast<double>(lines[k]) / n : 0.0;
  }
  std::vector<std::string> examples;  // the first few "question -> completion" pairs, for the log
  std::vector<std::string> errors;    // the first few wrong ones: "question -> completion  (expected N)"
};

// A CPU model holding `model`'s parameters and router biases (read through host copies when `model` is on cuda).
std::unique_ptr<Transformer<float>> cpu_copy_of(const Transformer<float>& model);

// The model a rollout of `model` decodes with: `model` itself on the cpu or when it is an MLA model on cuda, else a
// CPU copy held in `cpu_copy` (the dense attention kinds have no device decode kernel).
const Transformer<float>& decode_model(const Transformer<float>& model, std::unique_ptr<Transformer<float>>& cpu_copy);

EvalResult evaluate_exact_match(Transformer<float>& model, const Tokenizer& tok, const std::vector<Problem>& problems,
                                int max_new_tokens = 96, int n_examples = 3, int n_errors = 0);

}  // namespace tinyds
