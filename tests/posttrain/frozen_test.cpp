// tests/posttrain/frozen_test.cpp — micro-batched forward passes of frozen models (posttrain/frozen.h): the same
// log-probs / values as one full-batch forward, with activation buffers sized for the micro-batch.
//
// Tolerance 1e-6 absolute: the micro-batched and full-batch forwards compute every row with the same operations,
// only the GEMMs' row blocking can differ (a float32 rounding difference of ~1e-7 on log-probs of size ~5); a wrong
// offset or a dropped tail micro-batch (B not a multiple of rows) gives errors of order 1.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tinyds/core/ledger.h"
#include "tinyds/core/rng.h"
#include "tinyds/model/config.h"
#include "tinyds/posttrain/frozen.h"
#include "tinyds/posttrain/losses/logprobs.h"

using namespace tinyds;

namespace {

struct Inputs { int B, T; std::vector<int> tokens, targets; };

Inputs random_inputs(const ModelConfig& mc, int B, int T, uint64_t seed) {
  Inputs in{B, T, std::vector<int>(B * T), std::vector<int>(B * T)};
  Rng rng(seed);
  for (int i = 0; i < B * T; i++) {
    in.tokens[i] = static_cast<int>(rng.randint(0, mc.vocab_size - 1));
    in.targets[i] = rng.uniform() < 0.3 ? -1 : static_cast<int>(rng.randint(0, mc.vocab_size - 1));  // some masked
  }
  return in;
}

}  // namespace

TEST_CASE("posttrain/frozen: micro-batched log-probs equal one full-batch forward, B not a multiple of rows") {
  const ModelConfig mc = Config::preset("nano").model;  // MLA + MoE + MTP: every block kind
  const Inputs in = random_inputs(mc, 7, 11, 5);
  const int N = in.B * in.T;
  Transformer<float> full(mc, Role::policy), frozen(mc, Role::reference);
  full.init_weights(3);
  frozen.init_weights(3);
  std::vector<float> want(N), got(N, 123.0f);
  full.forward(in.tokens.data(), nullptr, in.B, in.T);
  logprobs_forward(want.data(), full.logits(), in.targets.data(), N, mc.vocab_size, 0.7);
  frozen_logprobs(got.data(), frozen, in.tokens.data(), in.targets.data(), in.B, in.T, 0.7f, /*rows=*/3);
  double worst = 0;
  for (int n = 0; n < N; n++) worst = std::max(worst, static_cast<double>(std::fabs(got[n] - want[n])));
  CHECK(worst < 1e-6);
  // Activations held for 3 sequences, not 7: the reference role's activation bytes are below the full model's.
  const std::size_t ref_act = Ledger::global().current(Role::reference, Category::activations);
  CHECK(ref_act > 0);
  CHECK(ref_act < Ledger::global().current(Role::policy, Category::activations) * 3 / 7 + 4096);
  CHECK_THROWS_WITH_AS(frozen_logprobs(got.data(), frozen, in.tokens.data(), in.targets.data(), in.B, in.T, 1.0f, 0),
                       doctest::Contains("rows = 0"), Error);
}

TEST_CASE("posttrain/frozen: micro-batched values equal one full-batch forward of the critic / reward model") {
  const ModelConfig mc = Config::preset("nano").model;
  const Inputs in = random_inputs(mc, 5, 9, 8);
  const int N = in.B * in.T;
  Critic<float> full(mc, Role::critic), frozen(mc, Role::reward);
  full.trunk().init_weights(4);
  frozen.trunk().init_weights(4);
  Rng rng(9);
  for (int c = 0; c <= mc.d_model; c++) full.head()[c] = frozen.head()[c] = static_cast<float>(rng.normal());
  const float* v = full.forward(in.tokens.data(), in.B, in.T);
  std::vector<float> want(v, v + N), got(N, 123.0f);
  frozen_values(got.data(), frozen, in.tokens.data(), in.B, in.T, /*rows=*/2);
  double worst = 0;
  for (int n = 0; n < N; n++) worst = std::max(worst, static_cast<double>(std::fabs(got[n] - want[n])));
  CHECK(worst < 1e-6);
}
