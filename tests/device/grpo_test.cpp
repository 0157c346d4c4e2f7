// tests/device/grpo_test.cpp — one GRPO step on the device (posttrain/grpo_trainer.h's grpo_update and rollout with
// cuda models) against the CPU path: the same sampled tokens, the same rewards, the same loss and metrics, the same
// gradients and parameters after the update, within the tolerances stated below; without and with PPO-ptx's SFT
// term (ptx_coef: gamma x the SFT objective's gradient on one SFT batch, added to the RL gradient).
//
// Shapes: nano preset (MLA + MoE, C 32, 2 layers, V 128); P 2 prompts x G 4 completions of up to 16 tokens; the SFT
// batch (ptx) 4 level-1 problems, prompt masked.
#include <doctest/doctest.h>

#include <cctype>
#include <cmath>
#include <vector>

#include "tests/device/device_util.h"
#include "tinyds/data/batch.h"
#include "tinyds/data/generator.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/model/rollout.h"
#include "tinyds/posttrain/grpo_trainer.h"
#include "tinyds/train/optimizer.h"

using namespace tinyds;
using namespace tinyds::test;

namespace {

// A policy and an identical frozen reference on one device, with the weights of `seed`.
struct Models {
  Transformer<float> policy, reference;
  Models(const ModelConfig& m, Device d) : policy(m, Role::policy, d), reference(m, Role::reference, d) {}
};

// The update's rewards, a rule on the decoded text: the fraction of the completion's characters that are digits.
// A randomly initialised nano almost never earns the trainer's accuracy or format reward, so those would make every
// group degenerate (advantages 0, and at policy == reference the KL gradient is 0 too: nothing to compare). This
// rule varies across the completions of a prompt, so the advantages and the gradient are non-zero.
std::vector<double> digit_rewards(const Rollout& r, const Tokenizer& tok) {
  std::vector<double> out(r.B);
  for (int b = 0; b < r.B; b++) {
    const std::string s = tok.decode(r.completion_ids(b));
    int digits = 0;
    for (char c : s) digits += std::isdigit(static_cast<unsigned char>(c)) ? 1 : 0;
    out[b] = s.empty() ? 0.0 : static_cast<double>(digits) / s.size();
  }
  return out;
}

// One grpo_update on each device from the same weights and rollout, compared. ptx_coef > 0 adds the SFT term on
// the batch `sft`.
void compare_one_step(float ptx_coef, const Batch* sft) {
  const ModelConfig m = device_nano();
  Tokenizer tok;
  Models cpu(m, Device::cpu), gpu(m, Device::cuda);
  cpu.policy.init_weights(11);
  copy_weights(cpu.reference, cpu.policy);
  copy_weights(gpu.policy, cpu.policy);
  copy_weights(gpu.reference, cpu.policy);

  // 1-2. Two level-1 prompts, four completions each, sampled at temperature 1 on each device.
  const int G = 4;
  std::vector<std::vector<int>> prompts;
  std::vector<int64_t> answers;
  for (const Problem& p : generate_problems(1, 2, 99, Split::train))
    for (int g = 0; g < G; g++) {
      prompts.push_back(encode_prompt(p, tok));
      answers.push_back(p.final_answer);
    }
  RolloutOptions ro;
  ro.sampling.temperature = 1.0f;
  ro.sampling.max_new_tokens = 16;
  ro.sampling.seed = 3;
  ro.n_tokens = tok.vocab_size();
  ro.eos = Tokenizer::EOS;
  ro.pad = Tokenizer::PAD;
  const Rollout rc = rollout(cpu.policy, prompts, ro), rg = rollout(gpu.policy, prompts, ro);
  REQUIRE(rc.T == rg.T);
  int differing = 0;
  for (std::size_t i = 0; i < static_cast<std::size_t>(rc.B) * rc.T; i++) differing += rc.tokens[i] != rg.tokens[i];
  REQUIRE(differing == 0);  // the same tokens (tests/device/rollout_test.cpp says why they must be)

  // 3. Rewards on the host from the decoded text: the trainer's (accuracy + format) and the update's rule.
  const std::vector<double> trainer_c = totals(score_rollout(rc, tok, answers, RewardRules{}));
  const std::vector<double> trainer_g = totals(score_rollout(rg, tok, answers, RewardRules{}));
  CHECK(trainer_c == trainer_g);
  const std::vector<double> rewards_c = digit_rewards(rc, tok), rewards_g = digit_rewards(rg, tok);
  CHECK(rewards_c == rewards_g);

  // 4-5. One update on each device.
  GRPOTrainOptions opt;
  opt.grpo.num_generations = G;
  opt.max_completion_length = ro.sampling.max_new_tokens;
  opt.lr = 1e-3f;
  opt.warmup_steps = 0;
  opt.ref_batch = 0;
  opt.ptx_coef = ptx_coef;
  AdamW adam_c(cpu.policy.layout(), Role::policy), adam_g(gpu.policy.layout(), Role::policy, Device::cuda);
  const std::size_t n = cpu.policy.num_params();
  const std::vector<float> w0(cpu.policy.params(), cpu.policy.params() + n);
  const GRPOStepStats sc = grpo_update(cpu.policy, &cpu.reference, adam_c, rc, rewards_c, opt, 0, nullptr, sft);
  const GRPOStepStats sg = grpo_update(gpu.policy, &gpu.reference, adam_g, rg, rewards_g, opt, 0, nullptr, sft);
  MESSAGE("loss cpu " << sc.loss << " cuda " << sg.loss << "; entropy " << sc.entropy << " / " << sg.entropy
                      << "; grad norm " << sc.grad_norm << " / " << sg.grad_norm << "; kl " << sc.kl << " / " << sg.kl);
  // The SFT objective (~log V = 4.9 at init): one forward's mean cross-entropy, float on both paths in other
  // summation orders: 1e-5 relative.
  CHECK(std::fabs(sc.ptx_loss - sg.ptx_loss) <= 1e-5 * std::fabs(sc.ptx_loss));
  if (ptx_coef > 0) CHECK(sc.ptx_loss > 1.0);  // the term ran (0 when it is off)
  REQUIRE(sc.degenerate_groups == 0);  // the rewards vary within both groups: a real gradient
  CHECK(sg.degenerate_groups == 0);
  // At mu = 1 the ratio is 1 and the loss is -(1/B) sum_i A_i (+ beta k3, 0 at policy == reference): a sum of O(1)
  // advantages that cancels to ~0 within each group, so it is compared absolutely: float rounding of 8 terms, the
  // kernel's float stats vs the CPU's double, and lp - lp_old differing by ~1e-6 between paths: 1e-5.
  CHECK(std::fabs(sc.loss - sg.loss) < 1e-5);
  CHECK(std::fabs(sc.kl - sg.kl) < 1e-6);  // both ~0: lp_ref and lp come from identical weights on each device
  // Entropy (O(1..5), a mean of per-token float reductions over V) and the gradient norm (the kernels' other
  // summation orders, ~1e-6 relative on logits, amplified through the backward): 1e-5 and 1e-4 relative.
  CHECK(std::fabs(sc.entropy - sg.entropy) <= 1e-5 * std::fabs(sc.entropy));
  CHECK(std::fabs(sc.grad_norm - sg.grad_norm) <= 1e-4 * sc.grad_norm);

  // Gradients of the update (after the clip, which scaled both by ~the same factor): the design's 1e-4 relative
  // (max abs diff / max abs value) for fp32 backwards summed in other orders.
  const std::vector<float> gc(cpu.policy.grads(), cpu.policy.grads() + n);
  std::vector<float> gg(n);
  gpu.policy.grads_to_host(gg.data());
  const MaxDiff dg = max_diff(gg, gc);
  MESSAGE("gradients: max |cuda - cpu| = " << dg.abs << " of max |g| = " << dg.ref);
  CHECK(dg.rel() < 1e-4);

  // Parameters after the step. AdamW's first step moves w by -lr (g / (|g| + eps)) (bias-corrected m = g, v = g^2;
  // no weight decay here): -lr sign(g) wherever |g| >> eps = 1e-8. Where |g| is far above the two paths' gradient
  // difference the sign is the same and the steps agree to lr * 1e-3 (plus the float rounding of w - lr); where
  // |g| is within that difference of 0 the sign may differ, and the steps by up to 2 lr.
  std::vector<float> wg(n);
  gpu.policy.params_to_host(wg.data());
  const float* wc = cpu.policy.params();
  const double sure = 100 * dg.abs;  // |g| above this: the same sign on both paths
  std::size_t checked = 0, far = 0;
  double worst_sure = 0, worst_any = 0, moved = 0;
  for (std::size_t i = 0; i < n; i++) {
    const double d = std::fabs(static_cast<double>(wc[i]) - wg[i]);
    worst_any = std::max(worst_any, d);
    moved = std::max(moved, std::fabs(static_cast<double>(wc[i]) - w0[i]));
    if (std::fabs(gc[i]) > sure) {
      checked++;
      worst_sure = std::max(worst_sure, d);
      far += d > 1e-3 * opt.lr + 1e-7;  // 1e-7: an ulp of |w| <= ~1 after the subtraction
    }
  }
  MESSAGE("parameters: " << checked << " of " << n << " with |g| > " << sure << " differ by at most " << worst_sure
                         << "; all by at most " << worst_any << " (lr " << opt.lr << ")");
  CHECK(moved > 0.5 * opt.lr);        // the update did move the weights
  CHECK(checked > n / 2);             // most weights are in the sure set: the check covers them
  CHECK(far == 0);
  CHECK(worst_any <= 2 * opt.lr + 1e-6);
}

}  // namespace

TEST_CASE("device/grpo: one GRPO step gives the same tokens, rewards, loss and parameters on cpu and cuda") {
  compare_one_step(0.0f, nullptr);
}

TEST_CASE("device/grpo: with the SFT term (ptx_coef) the step still agrees on cpu and cuda") {
  Tokenizer tok;
  const std::vector<Problem> problems = generate_problems(1, 4, 5, Split::train);
  const std::vector<int> idx = {0, 1, 2, 3};
  const Batch sft = make_batch(problems, idx, tok, batch_columns(problems, idx, 64), /*mask_prompt=*/true);
  compare_one_step(0.5f, &sft);
}
