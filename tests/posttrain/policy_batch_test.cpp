// tests/posttrain/policy_batch_test.cpp — a rollout packed as a teacher-forced batch (posttrain/policy_batch.h):
// inputs, targets and mask line up with the rollout, and lp_old equals the teacher-forced forward's log-probs.
//
// Shapes: nano-dense preset (C 32, 2 layers, V 128, max_seq_len 64); 8 prompts of lengths 1..8.
// Weights: random init with init_std 0.2 instead of the preset's 0.02, so logits are O(1) and far from uniform
// (as in tests/model/decoder_test.cpp): greedy choices are then not near-ties that decoding-order rounding could flip, and a
// log-prob taken from the wrong logits row or at the wrong temperature is visibly wrong.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tinyds/model/config.h"
#include "tinyds/model/sampling.h"
#include "tinyds/model/transformer.h"
#include "tinyds/posttrain/policy_batch.h"
#include "tests/util/rollout_util.h"

using namespace tinyds;
using namespace tinyds::test;

TEST_CASE("posttrain/policy_batch: a packed rollout's columns line up and its lp_old equals a teacher-forced forward's log-probs") {
  // Tolerance: the decoder's logits match the full forward's within ~5e-6 (tests/model/decoder_test.cpp); lp = l/tau - lse(l/tau)
  // moves by at most 2 * (logit error) / tau, ~1.5e-5 at tau 0.7, plus float storage of lp (~1e-6). 1e-4 leaves
  // a margin; a log-prob from the neighbouring position, the wrong token or the wrong temperature is off by O(0.1).
  constexpr double kTol = 1e-4;
  Transformer<float> model(rollout_nano());
  model.init_weights(5);
  const auto prompts = short_prompts();
  const int V = model.config().vocab_size;
  for (float temperature : {1.0f, 0.7f}) {
    RolloutOptions o = rollout_options(temperature, 16, 40, 2);
    if (temperature != 1.0f) { o.sampling.top_k = 10; o.sampling.top_p = 0.9f; }  // lp ignores the truncation
    const Rollout r = rollout(model, prompts, o);
    const PolicyBatch pb = pack_for_forward(r);
    INFO("temperature ", temperature);
    model.forward(pb.inputs.data(), nullptr, pb.B, pb.T);
    int compared = 0;
    double worst = 0;
    for (int b = 0; b < pb.B; b++) {
      for (int t = 0; t < pb.T; t++) {
        const std::size_t o2 = static_cast<std::size_t>(b) * pb.T + t;
        // inputs = seq[:-1], targets = seq[1:]
        CHECK(pb.inputs[o2] == (t < r.length(b) - 1 ? r.row(b)[t] : 0));
        CHECK(pb.targets[o2] == (t + 1 < r.length(b) ? r.row(b)[t + 1] : -1));
        const bool sampled = t + 1 >= r.prompt_len[b] && t + 1 < r.length(b);
        CHECK(pb.mask[o2] == (sampled ? 1.0f : 0.0f));
        if (!sampled) continue;
        // log_softmax(logits / tau)[target] over the full vocabulary, in double
        const float* row = model.logits() + o2 * V;
        double mx = row[0];
        for (int v = 1; v < V; v++) mx = std::max(mx, static_cast<double>(row[v]));
        double sum = 0;
        for (int v = 0; v < V; v++) sum += std::exp((row[v] - mx) / temperature);
        const double lp = (row[pb.targets[o2]] - mx) / temperature - std::log(sum);
        worst = std::max(worst, std::fabs(lp - pb.old_logprobs[o2]));
        compared++;
      }
    }
    int total_completion = 0;
    for (int b = 0; b < r.B; b++) total_completion += r.completion_len[b];
    CHECK(compared == total_completion);
    MESSAGE("temperature ", temperature, ": ", compared, " log-probs, max |decoded - forward| = ", worst);
    CHECK(worst < kTol);
  }
}

