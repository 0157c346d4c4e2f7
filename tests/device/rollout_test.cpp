// tests/device/rollout_test.cpp — the kv-cache decoder and rollouts on the device (model/decoder.h, model/rollout.h
// with a cuda model) against the CPU path: the same logits at every step, the same greedy completions, the same
// sampled tokens for the same seed.
//
// Shapes: nano preset (MLA + MoE, C 32, 2 layers, V 128); B 3..8 prompts of lengths 1..8 (tests/util/rollout_util.h).
// Under the default build cuda is the CPU emulation of the kernels: the same kernels, run on the CPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/device/device_util.h"
#include "tests/util/rollout_util.h"
#include "tinyds/core/timer.h"
#include "tinyds/model/decoder.h"
#include "tinyds/model/rollout.h"

using namespace tinyds;
using namespace tinyds::test;

namespace {

// A nano model on the CPU and its twin on cuda with the same weights.
struct Twins {
  ModelConfig m = device_nano();
  Transformer<float> cpu{m, Role::policy, Device::cpu}, gpu{m, Role::policy, Device::cuda};
  Twins() {
    cpu.init_weights(11);
    copy_weights(gpu, cpu);
  }
};

constexpr int kTokens = 101;  // ids sampled: [0, 101), as a tokenizer's vocabulary inside the padded V = 128

}  // namespace

TEST_CASE("device/rollout: the decoder's logits agree at every step and greedy picks the same tokens") {
  Twins t;
  const int B = 3, steps = 24, V = t.m.vocab_size;
  Decoder dc(t.cpu, B, steps), dg(t.gpu, B, steps);
  CHECK(dg.cache().place() == Place::device);
  std::vector<int> in = {1, 1, 1};  // <bos>, then each sequence's greedy token (the CPU's)
  MaxDiff worst;
  int same_argmax = 0;
  for (int p = 0; p < steps; p++) {
    const float* lc = dc.step(in.data());
    const std::vector<float> cpu_logits(lc, lc + static_cast<std::size_t>(B) * V);
    const std::vector<float> gpu_logits = host_copy(dg.step(in.data()), cpu_logits.size(), Device::cuda);
    const MaxDiff d = max_diff(gpu_logits, cpu_logits);
    worst.abs = std::max(worst.abs, d.abs);
    worst.ref = std::max(worst.ref, d.ref);
    for (int b = 0; b < B; b++) {
      const float* rc = cpu_logits.data() + static_cast<std::size_t>(b) * V;
      const float* rg = gpu_logits.data() + static_cast<std::size_t>(b) * V;
      in[b] = static_cast<int>(std::max_element(rc, rc + kTokens) - rc);
      same_argmax += in[b] == static_cast<int>(std::max_element(rg, rg + kTokens) - rg);
    }
  }
  MESSAGE("decoder logits, " << steps << " steps x " << B << " sequences: max |cuda - cpu| = " << worst.abs
                             << " on logits up to " << worst.ref);
  // fp32 on both paths; the kernels sum the GEMMs, norms and softmaxes in other orders than Eigen, and the error of
  // each of the 24 positions' 2 layers feeds the cache the later ones read. Observed ~1e-6 relative; 1e-4 leaves
  // room for a GPU's FMAs and is far below what a wrong row, head or cache position gives (O(1)).
  CHECK(worst.rel() < 1e-4);
  CHECK(same_argmax == steps * B);
}

TEST_CASE("device/rollout: greedy completions are the same on cpu and cuda") {
  Twins t;
  const auto prompts = short_prompts();
  const RolloutOptions o = rollout_options(0.0f, 12, kTokens, /*eos=*/5);
  Timer tc;
  const Rollout rc = rollout(t.cpu, prompts, o);
  const double cpu_s = tc.seconds();
  Timer tg;
  const Rollout rg = rollout(t.gpu, prompts, o);
  const double gpu_s = tg.seconds();
  MESSAGE("greedy rollout of " << prompts.size() << " prompts x 12 tokens: cpu " << cpu_s << " s, cuda "
                               << std::string(cuda_is_emulated() ? "(emulated) " : "") << gpu_s << " s");
  REQUIRE(rc.B == rg.B);
  REQUIRE(rc.T == rg.T);
  CHECK(rc.completion_len == rg.completion_len);
  CHECK(rc.ended_with_eos == rg.ended_with_eos);
  int differing = 0;
  for (std::size_t i = 0; i < static_cast<std::size_t>(rc.B) * rc.T; i++) differing += rc.tokens[i] != rg.tokens[i];
  CHECK(differing == 0);
  // The log-probs: the CPU's token_logprob in double, the logprobs kernel in float on logits that agree to ~1e-6:
  // 1e-4 absolute on log-probs of O(1..5).
  const std::vector<float> lc(rc.logprobs.data(), rc.logprobs.data() + rc.logprobs.size());
  const std::vector<float> lg(rg.logprobs.data(), rg.logprobs.data() + rg.logprobs.size());
  const MaxDiff d = max_diff(lg, lc);
  MESSAGE("greedy log-probs: max |cuda - cpu| = " << d.abs);
  CHECK(d.abs < 1e-4);
}

TEST_CASE("device/rollout: sampling at temperature 1 with one seed draws the same tokens on cpu and cuda") {
  // Each (sequence, position) draws one uniform from rollout_rng on the host on both paths; the sampling kernel
  // (kernels/sampling.cu) sums in the CPU's order in double, so the same uniform picks the same token unless the
  // logits' rounding moves a boundary across it (probability ~1e-6 per draw here).
  Twins t;
  const auto prompts = short_prompts();
  for (uint64_t seed : {7ull, 8ull}) {
    const RolloutOptions o = rollout_options(1.0f, 16, kTokens, /*eos=*/5, seed);
    const Rollout rc = rollout(t.cpu, prompts, o);
    const Rollout rg = rollout(t.gpu, prompts, o);
    REQUIRE(rc.T == rg.T);
    CHECK(rc.completion_len == rg.completion_len);
    int differing = 0, sampled = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(rc.B) * rc.T; i++) {
      differing += rc.tokens[i] != rg.tokens[i];
      sampled += rc.mask[i] != 0.0f;
    }
    CHECK(differing == 0);
    CHECK(sampled > 50);  // the comparison covers many draws
    const std::vector<float> lc(rc.logprobs.data(), rc.logprobs.data() + rc.logprobs.size());
    const std::vector<float> lg(rg.logprobs.data(), rg.logprobs.data() + rg.logprobs.size());
    CHECK(max_diff(lg, lc).abs < 1e-4);  // as in the greedy case
  }
  // A different seed draws different tokens on cuda too: the uniforms reach the kernel.
  const Rollout a = rollout(t.gpu, prompts, rollout_options(1.0f, 16, kTokens, 5, 7));
  const Rollout b = rollout(t.gpu, prompts, rollout_options(1.0f, 16, kTokens, 5, 8));
  int differing = 0;
  for (std::size_t i = 0; i < static_cast<std::size_t>(a.B) * a.T && a.T == b.T; i++) differing += a.tokens[i] != b.tokens[i];
  CHECK(differing > 0);
}

TEST_CASE("device/rollout: the naive MLA path and dense attention are refused on cuda with a clear error") {
  Twins t;
  CHECK_THROWS_WITH_AS(Decoder(t.gpu, 1, 8, MlaPath::naive), doctest::Contains("absorbed"), std::exception);
  ModelConfig dense = Config::preset("nano-dense").model;
  Transformer<float> d(dense, Role::policy, Device::cuda);
  CHECK_THROWS_WITH_AS(Decoder(d, 1, 8), doctest::Contains("mla model"), std::exception);
}
