// tinyds/train/pass_at_k.h — sampled evaluation: pass@k with the unbiased estimator, the entropy of the samples
// and the share of degenerate groups (DESIGN 6.1: what tells whether RL has signal).
//
// Shapes: P held-out problems, K samples per problem (n = K in the estimator), k = 1..K.
//
// pass@k (Codex paper, arXiv 2107.03374, Eq. 1): of n samples of a problem, c are right; the chance that k of
// them drawn without replacement hold at least one right one is
//   pass@k = 1 - C(n-c, k) / C(n, k)
// averaged over problems. The binomials overflow for modest n, so it is computed as the product
//   C(n-c, k) / C(n, k) = prod_{i=n-c+1..n} (1 - k / i)          (1 when n - c < k: every k-subset has a right one)
// (the paper's numpy snippet). pass@1 is c / n: the sampled accuracy; pass@K is "any of the K right".
//
// A group (the K samples of one problem) is degenerate when all K are right or all K are wrong: GRPO gives it
// zero advantage, so it carries no gradient (DESIGN 6).
#pragma once
#include <cstdint>
#include <vector>

#include "tinyds/data/problem.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/model/transformer.h"

namespace tinyds {

// pass@k for one problem with n samples of which c are right (0 <= c <= n, 1 <= k <= n; else tinyds::Error).
double pass_at_k(int n, int c, int k);

struct SampledEvalResult {
  int problems = 0;               // P
  int samples = 0;                // K per problem
  float temperature = 1.0f;
  std::vector<double> pass_at;    // (K) pass_at[k-1] = pass@k averaged over the P problems
  double entropy = 0;             // mean -log p of the sampled tokens at the temperature (an unbiased estimate
                                  // of the mean per-token entropy of the sampling distribution), nats
  int all_right = 0;              // groups whose K samples are all right
  int all_wrong = 0;              // groups whose K samples are all wrong
  double degenerate_share = 0;    // (all_right + all_wrong) / P
  double mean_completion_len = 0; // new tokens per sample (<eos> included)
};

// K samples per problem at `temperature` (> 0; kv-cache rollout, model/rollout.h), each scored by exact
// match of the integer after its last "####" (as evaluate_exact_match). Deterministic for a given seed.
SampledEvalResult evaluate_pass_at_k(const Transformer<float>& model, const Tokenizer& tok,
                                     const std::vector<Problem>& problems, int K, float temperature,
                                     int max_new_tokens = 96, uint64_t seed = 1);

}  // namespace tinyds
