// tinyds/train/pass_at_k.cpp — see pass_at_k.h.
#include "tinyds/train/pass_at_k.h"

#include "tinyds/core/error.h"
#include "tinyds/data/batch.h"
#include "tinyds/model/rollout.h"
#include "tinyds/train/evaluate.h"

namespace tinyds {

double pass_at_k(int n, int c, int k) {
  if (n < 1 || c < 0 || c > n || k < 1 || k > n)
    throw_error("pass_at_k: need 0 <= c <= n and 1 <= k <= n, got n = ", n, ", c = ", c, ", k = ", k);
  if (n - c < k) return 1.0;  // fewer than k wrong samples: every k-subset contains a right one
  // C(n-c, k) / C(n, k) = prod_{i=n-c+1..n} (1 - k/i): the ratio of binomials without forming either.
  double all_wrong = 1.0;
  for (int i = n - c + 1; i <= n; i++) all_wrong *= 1.0 - static_cast<double>(k) / i;
  return 1.0 - all_wrong;
}

SampledEvalResult evaluate_pass_at_k(const Transformer<float>& model, const Tokenizer& tok,
                                     const std::vector<Problem>& problems, int K, float temperature,
                                     int max_new_tokens, uint64_t seed) {
  if (K < 1) throw_error("evaluate_pass_at_k: samples per problem K = ", K, ": must be >= 1");
  if (!(temperature > 0)) throw_error("evaluate_pass_at_k: temperature ", temperature, " must be > 0 (0 is greedy)");
  SampledEvalResult r;
  r.problems = static_cast<int>(problems.size());
  r.samples = K;
  r.temperature = temperature;
  r.pass_at.assign(K, 0.0);
  if (problems.empty()) return r;
  // Row p*K + j is sample j of problem p: the rollout keys its randomness by row, so the K copies differ.
  std::vector<std::vector<int>> prompts;
  prompts.reserve(problems.size() * K);
  for (const Problem& p : problems) {
    const std::vector<int> ids = encode_prompt(p, tok);
    for (int j = 0; j < K; j++) prompts.push_back(ids);
  }
  RolloutOptions opt;
  opt.sampling.temperature = temperature;
  opt.sampling.max_new_tokens = max_new_tokens;
  opt.sampling.seed = seed;
  opt.n_tokens = tok.vocab_size();
  opt.eos = Tokenizer::EOS;
  opt.pad = Tokenizer::PAD;
  std::unique_ptr<Transformer<float>> cpu;  // a CPU copy when the model's attention has no device decoder (evaluate.h)
  const Rollout ro = rollout(decode_model(model, cpu), prompts, opt);

  double surprisal = 0, tokens = 0;
  for (std::size_t p = 0; p < problems.size(); p++) {
    int c = 0;
    for (int j = 0; j < K; j++) {
      const int b = static_cast<int>(p) * K + j;
      std::vector<int> ids = ro.completion_ids(b);
      for (int t = 0; t < ro.completion_len[b]; t++) surprisal -= ro.logprob_row(b)[ro.prompt_len[b] + t];
      tokens += ids.size();
      if (!ids.empty() && ids.back() == Tokenizer::EOS) ids.pop_back();
      const std::optional<int64_t> got = parse_final_answer(tok.decode(ids));
      c += got && *got == problems[p].final_answer;
    }
    for (int k = 1; k <= K; k++) r.pass_at[k - 1] += pass_at_k(K, c, k) / r.problems;
    r.all_right += c == K;
    r.all_wrong += c == 0;
  }
  r.entropy = tokens > 0 ? surprisal / tokens : 0.0;
  r.degenerate_share = static_cast<double>(r.all_right + r.all_wrong) / r.problems;
  r.mean_completion_len = tokens / (static_cast<double>(r.problems) * K);
  return r;
}

}  // namespace tinyds
