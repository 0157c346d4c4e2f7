// tests/model/sampling_test.cpp — next-token choice (greedy, temperature, top-k, top-p) and batched generation.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tinyds/model/config.h"
#include "tinyds/model/sampling.h"
#include "tinyds/model/transformer.h"

using namespace tinyds;

namespace {

// Frequencies of 20000 draws from logits log(p).
std::vector<double> frequencies(const std::vector<double>& p, SamplingParams sp, int draws = 20000) {
  std::vector<float> logits;
  for (double x : p) logits.push_back(static_cast<float>(std::log(x)));
  std::vector<double> f(p.size(), 0.0);
  Rng rng(17);
  for (int i = 0; i < draws; i++) f[sample_token(logits.data(), static_cast<int>(p.size()), sp, rng)] += 1.0 / draws;
  return f;
}

// 5 standard errors of a frequency estimated from n draws: a correct sampler fails this ~1 time in 1.7 million.
double tol(double p, int n = 20000) { return 5 * std::sqrt(p * (1 - p) / n); }

}  // namespace

TEST_CASE("model/sampling: greedy, top-k 1 and a tiny top-p all pick the argmax") {
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.9f};
  Rng rng(1);
  SamplingParams sp;
  CHECK(sample_token(logits.data(), 4, sp, rng) == 1);
  sp.temperature = 1.0f; sp.top_k = 1;
  for (int i = 0; i < 50; i++) CHECK(sample_token(logits.data(), 4, sp, rng) == 1);
  sp.top_k = 0; sp.top_p = 1e-4f;
  for (int i = 0; i < 50; i++) CHECK(sample_token(logits.data(), 4, sp, rng) == 1);
}

TEST_CASE("model/sampling: temperature 1 reproduces the softmax distribution, and top-k and top-p truncate and renormalise") {
  const std::vector<double> p = {0.5, 0.3, 0.2};
  SamplingParams sp;
  sp.temperature = 1.0f;
  std::vector<double> f = frequencies(p, sp);
  for (int i = 0; i < 3; i++) CHECK(std::fabs(f[i] - p[i]) < tol(p[i]));
  // top-k 2: the third token never appears; the first two renormalise to 0.625 / 0.375.
  sp.top_k = 2;
  f = frequencies(p, sp);
  CHECK(f[2] == 0.0);
  CHECK(std::fabs(f[0] - 0.625) < tol(0.625));
  // top-p 0.7: 0.5 < 0.7 <= 0.5 + 0.3, so the nucleus is the first two tokens.
  sp.top_k = 0; sp.top_p = 0.7f;
  f = frequencies(p, sp);
  CHECK(f[2] == 0.0);
  CHECK(std::fabs(f[1] - 0.375) < tol(0.375));
  // temperature 0.5 squares the odds: p^2 / sum p^2.
  sp.top_p = 1.0f; sp.temperature = 0.5f;
  f = frequencies(p, sp);
  const double z = 0.25 + 0.09 + 0.04;
  for (int i = 0; i < 3; i++) CHECK(std::fabs(f[i] - p[i] * p[i] / z) < tol(p[i] * p[i] / z));
}

TEST_CASE("model/sampling: bad parameters are errors naming them") {
  std::vector<float> logits = {0.f, 1.f};
  Rng rng(1);
  SamplingParams sp;
  sp.temperature = -1;
  CHECK_THROWS_WITH_AS(sample_token(logits.data(), 2, sp, rng), doctest::Contains("temperature"), Error);
  sp.temperature = 1; sp.top_p = 0;
  CHECK_THROWS_WITH_AS(sample_token(logits.data(), 2, sp, rng), doctest::Contains("top_p"), Error);
}

TEST_CASE("model/sampling: batched greedy generation equals one prompt at a time, and stays in the token range") {
  // Right-padding a shorter prompt must not change its completion (causal attention never looks right).
  Config cfg = Config::preset("nano-dense");
  Transformer<float> m(cfg.model);
  m.init_weights(11);
  std::vector<std::vector<int>> prompts = {{1, 40, 41, 42}, {1, 50}, {1, 60, 61, 62, 63, 64, 65}};
  SamplingParams sp;
  sp.max_new_tokens = 6;
  const int n_tokens = 101, eos = 2, pad = 0;
  auto batched = generate(m, prompts, sp, n_tokens, eos, pad, 64);
  for (std::size_t i = 0; i < prompts.size(); i++) {
    auto single = generate(m, {prompts[i]}, sp, n_tokens, eos, pad, 1);
    CHECK(single[0] == batched[i]);
    CHECK(batched[i].size() <= 6);
    for (int t : batched[i]) CHECK(t < n_tokens);
    // Stops at EOS: nothing follows it.
    for (std::size_t j = 0; j + 1 < batched[i].size(); j++) CHECK(batched[i][j] != eos);
  }
}
