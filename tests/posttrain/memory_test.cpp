// tests/posttrain/memory_test.cpp — `tinyds memory` (posttrain/memory.h): the measured model-state bytes (weights,
// grads, Adam moments) of one real step of every method equal the formula to the byte, on the nano presets; the
// roles each method allocates are the right ones; GRPO's model state is below PPO's.
// No tolerance: these are byte counts of allocations, exact by construction when the bookkeeping is right.
#include <doctest/doctest.h>

#include <string>

#include "tinyds/model/params.h"
#include "tinyds/posttrain/memory.h"

using namespace tinyds;

namespace {

std::size_t at(const std::size_t (&cells)[kNumRoles][kNumCategories], Role r, Category c) {
  return cells[static_cast<int>(r)][static_cast<int>(c)];
}

MemoryOptions tiny_batch() {
  MemoryOptions o;
  o.prompts = 2;
  o.num_generations = 2;
  o.response_length = 8;
  return o;
}

void check_state_equals_formula(const std::vector<MethodMemory>& ms) {
  for (const MethodMemory& m : ms)
    for (int r = 0; r < kNumRoles; r++)
      for (Category c : {Category::weights, Category::grads, Category::adam_m, Category::adam_v}) {
        INFO(m.method << " " << role_name(static_cast<Role>(r)) << " " << category_name(c));
        CHECK(m.peak[r][static_cast<int>(c)] == m.predicted[r][static_cast<int>(c)]);
      }
}

}  // namespace

TEST_CASE("posttrain/memory: model-state bytes of every method equal the formula to the byte (nano-dense)") {
  Config cfg = Config::preset("nano-dense");
  cfg.model.max_seq_len = 128;  // room for a level-1 prompt and a completion
  // The formula's parameter count, anchored by hand: embed 128*32, per layer 2*32 norms + wq 32*32 + wk, wv 16*32 +
  // wo 32*32 + w1, w3 64*32 + w2 32*64, final norm 32, head 128*32.
  const std::size_t P = 128 * 32 + 2 * (2 * 32 + 32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 64 * 32) + 32 + 128 * 32;
  REQUIRE(ParamLayout(cfg.model).total() == P);
  const std::vector<MethodMemory> ms = measure_memory(cfg, nullptr, tiny_batch());
  REQUIRE(ms.size() == 5);
  check_state_equals_formula(ms);
  // The formula itself, independently of predict_state_bytes: policy state for all; reference weights for all but
  // sft; critic weights, grads, moments with the value head (C + 1 = 33) for both PPOs; reward weights for ppo+rm.
  for (const MethodMemory& m : ms) {
    INFO(m.method);
    CHECK(at(m.peak, Role::policy, Category::weights) == 4 * P);
    CHECK(at(m.peak, Role::policy, Category::adam_v) == 4 * P);
    CHECK(at(m.peak, Role::reference, Category::weights) == (m.method == "sft" ? 0 : 4 * P));
    CHECK(at(m.peak, Role::reference, Category::grads) == 0);
    const bool ppo = m.method == "ppo" || m.method == "ppo+rm";
    CHECK(at(m.peak, Role::critic, Category::grads) == (ppo ? 4 * (P + 33) : 0));
    CHECK(at(m.peak, Role::reward, Category::weights) == (m.method == "ppo+rm" ? 4 * (P + 33) : 0));
    CHECK(at(m.peak, Role::reward, Category::grads) == 0);
    CHECK(at(m.peak, Role::policy, Category::activations) > 0);
    CHECK(m.peak_total <= m.cells_total());
  }
  const MethodMemory &ppo = ms[2], &grpo = ms[4];
  REQUIRE(ppo.method == "ppo");
  REQUIRE(grpo.method == "grpo");
  CHECK(ppo.sequences == grpo.sequences);  // same number of sampled sequences
  CHECK(ppo.columns == grpo.columns);      // same prompt rows and sampling seed: the same tokens, the same T
  CHECK(at(ppo.peak, Role::policy, Category::kv_cache) == at(grpo.peak, Role::policy, Category::kv_cache));
  CHECK(at(ppo.peak, Role::policy, Category::kv_cache) > 0);                   // both sampled with a kv-cache
  CHECK(at(grpo.peak, Role::policy, Category::kv_cache) > 0);
  // GRPO's step is the trainer's grpo_update, which holds lp_ref as reference activations for the step, not as a
  // rollout buffer; PPO's make_experience keeps lp_ref with the experience (rollout) for all its epochs.
  CHECK(at(grpo.peak, Role::reference, Category::rollout) == 0);
  CHECK(at(grpo.peak, Role::reference, Category::activations) > 0);
  CHECK(at(ppo.peak, Role::reference, Category::rollout) > 0);
  // Model state: GRPO = policy (4 copies) + reference (1); PPO adds the critic (4 more): 5/9 of PPO's.
  CHECK(static_cast<double>(grpo.state_total()) / ppo.state_total() == doctest::Approx(5.0 / 9.0).epsilon(0.01));
  const std::string report = memory_report(ms);
  CHECK(report.find("GRPO / PPO") != std::string::npos);
  CHECK(report.find("DIFFERS") == std::string::npos);
}

TEST_CASE("posttrain/memory: the DeepSeek-style nano (router biases, value head) matches the formula too") {
  Config cfg = Config::preset("nano");
  cfg.model.max_seq_len = 128;
  MemoryOptions o = tiny_batch();
  o.methods = {"ppo+rm", "grpo"};
  const std::vector<MethodMemory> ms = measure_memory(cfg, nullptr, o);
  check_state_equals_formula(ms);
  // Router biases are weights but not parameters: weights exceed grads by exactly 4 bytes per bias.
  // nano: layer 1 and the MTP block are MoE (n_dense_layers 1), E = 4 each: 8 biases of 4 bytes.
  const std::size_t bias_bytes = 2 * 4 * 4;
  CHECK(at(ms[1].peak, Role::policy, Category::weights) - at(ms[1].peak, Role::policy, Category::grads) == bias_bytes);
  CHECK(at(ms[0].peak, Role::critic, Category::weights) - at(ms[0].peak, Role::critic, Category::grads) == bias_bytes);
}

TEST_CASE("posttrain/memory: bad options are refused with a clear error") {
  Config cfg = Config::preset("nano-dense");
  MemoryOptions o = tiny_batch();
  o.num_generations = 1;
  CHECK_THROWS_WITH(measure_memory(cfg, nullptr, o), doctest::Contains("num_generations = 1"));
  o = tiny_batch();
  o.methods = {"rlhf"};
  CHECK_THROWS_WITH(measure_memory(cfg, nullptr, o), doctest::Contains("unknown method 'rlhf'"));
}
