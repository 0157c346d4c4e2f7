// tinyds/model/sampling.cpp — see sampling.h.
#include "tinyds/model/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tinyds/core/error.h"
#include "tinyds/model/transformer.h"

namespace tinyds {

namespace {
void check_params(const SamplingParams& sp) {
  if (!(sp.temperature >= 0)) throw_error("sampling: temperature ", sp.temperature, " must be >= 0");
  if (sp.top_k < 0) throw_error("sampling: top_k ", sp.top_k, " must be >= 0");
  if (!(sp.top_p > 0 && sp.top_p <= 1)) throw_error("sampling: top_p ", sp.top_p, " must be in (0, 1]");
}
}  // namespace

int sample_token(const float* logits, int V, const SamplingParams& sp, Rng& rng) {
  check_params(sp);
  // Greedy draws nothing, so a generator shared across steps sees the same draws with or without greedy rows.
  const double u = sp.temperature == 0.0f ? 0.0 : rng.uniform_double();
  return sample_token_given(logits, V, sp, u);
}

void sample_tokens(int* tokens, const float* logits, const double* uniforms, int N, int V, float temperature,
                   int top_k, float top_p) {
  SamplingParams sp;
  sp.temperature = temperature;
  sp.top_k = top_k;
  sp.top_p = top_p;
  for (int n = 0; n < N; n++) tokens[n] = sample_token_given(logits + static_cast<std::size_t>(n) * V, V, sp, uniforms[n]);
}

int sample_token_given(const float* logits, int V, const SamplingParams& sp, double uniform) {
  check_params(sp);
  if (sp.temperature == 0.0f) return static_cast<int>(std::max_element(logits, logits + V) - logits);

  // Sort token ids by logit, highest first; keep top_k of them.
  std::vector<int> ids(V);
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  int keep = sp.top_k > 0 ? std::min(sp.top_k, V) : V;
  // Softmax over the kept ids at this temperature (max subtraction: the largest exponent is 0, no overflow).
  std::vector<double> p(keep);
  double mx = logits[ids[0]], sum = 0;
  for (int i = 0; i < keep; i++) sum += p[i] = std::exp((logits[ids[i]] - mx) / sp.temperature);
  // Nucleus: the smallest prefix whose mass reaches top_p.
  double mass = 0;
  int nucleus = keep;
  for (int i = 0; i < keep; i++) {
    mass += p[i] / sum;
    if (mass >= sp.top_p) { nucleus = i + 1; break; }
  }
  double total = 0;
  for (int i = 0; i < nucleus; i++) total += p[i];
  double u = uniform * total;
  for (int i = 0; i < nucleus; i++) {
    u -= p[i];
    if (u < 0) return ids[i];
  }
  return ids[nucleus - 1];
}

std::vector<std::vector<int>> generate(Transformer<float>& model, const std::vector<std::vector<int>>& prompts,
                                       const SamplingParams& sp, int n_tokens, int eos, int pad, int batch) {
  const int V = model.config().vocab_size, max_len = model.config().max_seq_len;
  if (n_tokens < 1 || n_tokens > V) throw_error("generate: n_tokens ", n_tokens, " must be in [1, vocab_size = ", V, "]");
  std::vector<std::vector<int>> out(prompts.size());
  Rng rng(sp.seed);
  for (std::size_t start = 0; start < prompts.size(); start += batch) {
    const int B = static_cast<int>(std::min<std::size_t>(batch, prompts.size() - start));
    std::vector<std::vector<int>> seq(prompts.begin() + start, prompts.begin() + start + B);
    std::vector<bool> done(B, false);
    for (int b = 0; b < B; b++) {
      if (seq[b].empty()) throw_error("generate: prompt ", start + b, " is empty (it needs at least <bos>)");
      if (static_cast<int>(seq[b].size()) >= max_len) done[b] = true;  // no room for a new token
    }
    for (int step = 0; step < sp.max_new_tokens; step++) {
      // Only unfinished rows take part in the forward pass.
      std::vector<int> active;
      int T = 0;
      for (int b = 0; b < B; b++)
        if (!done[b]) { active.push_back(b); T = std::max(T, static_cast<int>(seq[b].size())); }
      if (active.empty()) break;
      const int A = static_cast<int>(active.size());
      std::vector<int> tokens(static_cast<std::size_t>(A) * T, pad);
      for (int r = 0; r < A; r++)
        std::copy(seq[active[r]].begin(), seq[active[r]].end(), tokens.begin() + static_cast<std::size_t>(r) * T);
      model.forward(tokens.data(), nullptr, A, T);
      for (int r = 0; r < A; r++) {
        const int b = active[r];
        const float* row = model.logits() + (static_cast<std::size_t>(r) * T + seq[b].size() - 1) * V;
        int next = sample_token(row, n_tokens, sp, rng);  // ids >= n_tokens are vocab padding
        seq[b].push_back(next);
        out[start + b].push_back(next);
        if (next == eos || static_cast<int>(seq[b].size()) >= max_len) done[b] = true;
      }
    }
  }
  return out;
}

}  // namespace tinyds
