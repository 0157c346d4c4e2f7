// tests/posttrain/grpo_trainer_test.cpp — the GRPO trainer (posttrain/grpo_trainer.h): the update moves the policy
// the way the advantages say, the whole loop runs from an SFT checkpoint and logs what it should, and bad options
// are refused with errors naming them.
//
// Shapes: nano preset (C 32, 2 layers, V 128); P 4 prompts x G 4 completions in the update test.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/util/fs_util.h"
#include "tests/util/one_problem_ckpt.h"
#include "tests/util/error_util.h"
#include "tests/util/nano_checkpoint.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/posttrain/grpo_trainer.h"
#include "tinyds/posttrain/losses/logprobs.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/trainer.h"

using namespace tinyds;
using tinyds::test::temp_dir;
using tinyds_test::error_of;
using tinyds_test::has;
namespace fs = std::filesystem;

namespace {

// A nano policy and an identical reference. init_std 0.2 (as tests/posttrain/rollout_test.cpp) so that the logits are
// O(1): the sampled completions then differ in log-prob and the update has something to reorder.
struct Pair {
  ModelConfig m;
  Transformer<float> policy, reference;
  Pair() : m(make()), policy(m, Role::policy), reference(m, Role::reference) {
    policy.init_weights(11);
    std::copy(policy.params(), policy.params() + policy.num_params(), reference.params());
    std::copy(policy.moe_bias(), policy.moe_bias() + policy.moe_bias_size(), reference.moe_bias());
  }
  static ModelConfig make() {
    ModelConfig m = Config::preset("nano").model;
    m.init_std = 0.2f;
    return m;
  }
};

// A fixed rollout: 4 short prompts, each sampled G = 4 times at temperature 1 (seeded, so the same every run).
Rollout fixed_rollout(const Transformer<float>& model, const Tokenizer& tok) {
  std::vector<std::vector<int>> prompts;
  for (const char* q : {"3+4=", "12-5=", "6*7=", "9+9="}) {
    std::vector<int> ids = {Tokenizer::BOS};
    for (int id : tok.encode(q)) ids.push_back(id);
    for (int g = 0; g < 4; g++) prompts.push_back(ids);
  }
  RolloutOptions ro;
  ro.sampling.temperature = 1.0f;
  ro.sampling.max_new_tokens = 12;
  ro.sampling.seed = 5;
  ro.n_tokens = tok.vocab_size();
  return rollout(model, prompts, ro);
}

// Per completion: the mean log-prob of its sampled tokens under `model` (B).
std::vector<double> mean_logprobs(Transformer<float>& model, const Rollout& r) {
  PolicyBatch pb = pack_for_forward(r);
  const int B = pb.B, T = pb.T, V = model.config().vocab_size;
  std::vector<int> tgt(static_cast<std::size_t>(B) * T);
  for (std::size_t n = 0; n < tgt.size(); n++) tgt[n] = pb.mask[n] != 0.0f ? pb.targets[n] : -1;
  model.forward(pb.inputs.data(), nullptr, B, T);
  std::vector<float> lp(tgt.size());
  logprobs_forward(lp.data(), model.logits(), tgt.data(), B * T, V, r.logprob_temperature);
  std::vector<double> out(B, 0.0);
  for (int b = 0; b < B; b++) {
    double s = 0, c = 0;
    for (int t = 0; t < T; t++) { s += lp[b * T + t]; c += pb.mask[b * T + t]; }
    out[b] = s / std::max(c, 1.0);
  }
  return out;
}

// Runs one grpo_update on the fixed rollout with rewards 1 for even and 0 for odd completions of each group
// (flip: the other way round); returns the mean change in mean log-prob of the even completions minus that of the
// odd ones (positive: the even ones gained relative to the odd ones).
double advantage_gap(bool flip, RLAlgo algo) {
  Tokenizer tok;
  Pair p;
  const Rollout r = fixed_rollout(p.policy, tok);
  REQUIRE(r.B == 16);
  std::vector<double> rewards(r.B);
  for (int b = 0; b < r.B; b++) rewards[b] = ((b % 2 == 0) != flip) ? 1.0 : 0.0;
  const std::vector<double> before = mean_logprobs(p.policy, r);
  GRPOTrainOptions opt;
  opt.algo = algo;
  opt.grpo.num_generations = 4;
  opt.lr = 1e-3f;  // one AdamW step moves each weight by ~lr: small enough for the first-order picture to hold
  opt.warmup_steps = 0;  // that full step (the default warmup would take a tenth of it)
  opt.ref_batch = 0;  // the reference's forward on the whole batch, as the policy's: bit-identical log-probs
  AdamW adam(p.policy.layout(), Role::policy);
  GRPOStepStats s = grpo_update(p.policy, &p.reference, adam, r, rewards, opt, 0);
  CHECK(s.degenerate_groups == 0);
  CHECK(s.kl == 0.0);  // policy == reference bit for bit before the step: k3 of identical log-probs is exactly 0
  CHECK(s.grad_norm > 0);
  const std::vector<double> after = mean_logprobs(p.policy, r);
  double even = 0, odd = 0;
  for (int b = 0; b < r.B; b++) ((b % 2 == 0) ? even : odd) += (after[b] - before[b]) / (r.B / 2);
  MESSAGE(std::string(rl_algo_name(algo)) << std::string(flip ? ", rewards flipped" : "") << ": d(mean lp) even " << even
                                          << ", odd " << odd);
  return even - odd;
}

}  // namespace

TEST_CASE("posttrain/grpo_trainer: one update raises positively-advantaged completions relative to negative ones") {
  // The GRPO objective at lp == lp_old is (1/B) sum_i A_i mean_t lp_i (plus a KL term whose gradient is 0 while
  // policy == reference), so a small step along its gradient must raise the completions with A > 0 relative to
  // those with A < 0. Flipping the rewards must flip the sign: the direction comes from the advantages, not from
  // anything else the update does. The gap is a difference of float32 forwards of the same batch (deterministic,
  // so noise-free for a fixed thread count); 1e-3 is far above the ~1e-6 rounding of a mean log-prob and far below
  // the measured gaps (0.3-0.4 at lr 1e-3: one AdamW step moves every weight by ~lr).
  CHECK(advantage_gap(false, RLAlgo::grpo) > 1e-3);   // even completions rewarded: they gain on the odd ones
  CHECK(advantage_gap(true, RLAlgo::grpo) < -1e-3);   // odd ones rewarded: the odd ones gain
  // REINFORCE's gradient is GRPO's without the std scaling and the clip: the same direction.
  CHECK(advantage_gap(false, RLAlgo::reinforce) > 1e-3);
}

TEST_CASE("posttrain/grpo_trainer: credit by calculator line spares right lines of wrong completions, wrong of right") {
  // Two groups of G = 2 after the prompt "Q\n" (<bos> first). Group 0: completion 0 (reward 2) has a wrong second
  // line, completion 1 (reward 0) a right first line and a wrong second one. Group 1: equal rewards (advantage 0).
  // Expected spared characters are found in the texts by hand, independently of reward.cpp's scanner: a result runs
  // from the number after '=' inside "<<...>>" to the end of the number written after ">>".
  Tokenizer tok;
  const std::string two_lines = "1+1=<<1+1=2>>2\n2*3=<<2*3=%>>%\n#### %";
  auto with = [&](char c) { std::string t = two_lines; for (char& x : t) if (x == '%') x = c; return t; };
  const std::vector<std::string> texts = {with('7'), with('5'), with('6'), with('5')};
  const std::vector<double> rewards = {2, 0, 1, 1};
  Rollout r;
  r.B = 4;
  r.T = 48;
  r.tokens.reset(r.B * r.T, Role::policy, Category::rollout);
  r.mask.reset(r.B * r.T, Role::policy, Category::rollout);
  r.logprobs.reset(r.B * r.T, Role::policy, Category::rollout);
  for (int b = 0; b < r.B; b++) {
    std::vector<int> seq = {Tokenizer::BOS};
    for (int id : tok.encode("Q\n")) seq.push_back(id);
    r.prompt_len.push_back(static_cast<int>(seq.size()));
    for (int id : tok.encode(texts[b])) seq.push_back(id);
    seq.push_back(Tokenizer::EOS);
    REQUIRE(static_cast<int>(seq.size()) <= r.T);
    r.completion_len.push_back(static_cast<int>(seq.size()) - r.prompt_len[b]);
    r.ended_with_eos.push_back(1);
    for (int t = 0; t < r.T; t++) {
      r.tokens[b * r.T + t] = t < static_cast<int>(seq.size()) ? seq[t] : Tokenizer::PAD;
      r.mask[b * r.T + t] = t >= r.prompt_len[b] && t < static_cast<int>(seq.size()) ? 1.0f : 0.0f;
    }
  }
  PolicyBatch pb = pack_for_forward(r);
  const std::vector<float> before(pb.mask.data(), pb.mask.data() + pb.mask.size());
  const long spared = spare_steps(pb.mask, r, rewards, /*G=*/2, tok);
  // Completion character i is sequence position prompt_len + i, predicted by packed column prompt_len + i - 1.
  std::vector<float> expected = before;
  auto spare = [&](int b, const std::string& result) {
    const std::size_t at = texts[b].find(result) + 1;  // skip the '='
    for (std::size_t i = at; i < at + result.size() - 1; i++) expected[b * pb.T + r.prompt_len[b] + i - 1] = 0.0f;
  };
  spare(0, "=7>>7");  // above its group's mean: its wrong line is not pushed up
  spare(1, "=2>>2");  // below it: its right line is not pushed down; its wrong line "=5>>5" keeps its gradient
  CHECK(spared == 8);
  CHECK(std::vector<float>(pb.mask.data(), pb.mask.data() + pb.mask.size()) == expected);
  // Rewards that do not divide into the groups are an error.
  CHECK(has(error_of([&] { spare_steps(pb.mask, r, {1, 0, 1}, 2, tok); }), "3 rewards for 4 completions"));
}

TEST_CASE("posttrain/grpo_trainer: degenerate groups and policy == reference leave the weights exactly unchanged") {
  // All rewards equal: every advantage is exactly 0, and the k3 gradient 1 - exp(lp_ref - lp) is exactly 0 while
  // the two models are identical, so the gradient is exactly 0 and AdamW's first step (m = v = 0) moves nothing.
  Tokenizer tok;
  Pair p;
  const Rollout r = fixed_rollout(p.policy, tok);
  GRPOTrainOptions opt;
  opt.grpo.num_generations = 4;
  opt.lr = 1e-2f;
  opt.ref_batch = 0;  // bit-identical reference log-probs (grpo_trainer.h)
  AdamW adam(p.policy.layout(), Role::policy);
  const std::vector<float> w0(p.policy.params(), p.policy.params() + p.policy.num_params());
  GRPOStepStats s = grpo_update(p.policy, &p.reference, adam, r, std::vector<double>(r.B, 1.0), opt, 0);
  CHECK(s.degenerate_groups == 4);
  CHECK(s.grad_norm == 0.0);
  std::size_t changed = 0;
  for (std::size_t i = 0; i < w0.size(); i++) changed += p.policy.params()[i] != w0[i];
  CHECK(changed == 0);
}

TEST_CASE("posttrain/grpo_trainer: a step at lr 0 leaves the policy's outputs bit-identical") {
  // With mixed rewards the gradient is nonzero, but AdamW at lr 0 moves no weight (p -= 0 * ...), and RL keeps the
  // MoE router biases frozen (moe_balance.h): nothing else may move the policy. nano is MoE with bias balancing
  // (gamma 1e-3), so a bias update on the RL batch would shift the routing and change the logits. Exact equality:
  // the same forward on the same weights is deterministic for a fixed thread count.
  Tokenizer tok;
  Pair p;
  REQUIRE(p.policy.moe_bias_size() > 0);
  const Rollout r = fixed_rollout(p.policy, tok);
  PolicyBatch pb = pack_for_forward(r);
  p.policy.forward(pb.inputs.data(), nullptr, pb.B, pb.T);
  const std::size_t NV = static_cast<std::size_t>(pb.B) * pb.T * p.m.vocab_size;
  const std::vector<float> logits0(p.policy.logits(), p.policy.logits() + NV);
  const std::vector<float> bias0(p.policy.moe_bias(), p.policy.moe_bias() + p.policy.moe_bias_size());
  std::vector<double> rewards(r.B);
  for (int b = 0; b < r.B; b++) rewards[b] = b % 2 == 0 ? 1.0 : 0.0;
  GRPOTrainOptions opt;
  opt.grpo.num_generations = 4;
  opt.num_iterations = 2;
  opt.lr = 0.0f;
  opt.ref_batch = 0;
  AdamW adam(p.policy.layout(), Role::policy);
  GRPOStepStats s = grpo_update(p.policy, &p.reference, adam, r, rewards, opt, 0);
  CHECK(s.grad_norm > 0);  // there was something to learn: the check below is about the update, not a zero gradient
  std::size_t bias_changed = 0;
  for (std::size_t i = 0; i < bias0.size(); i++) bias_changed += p.policy.moe_bias()[i] != bias0[i];
  CHECK(bias_changed == 0);
  p.policy.forward(pb.inputs.data(), nullptr, pb.B, pb.T);
  std::size_t logits_changed = 0;
  for (std::size_t i = 0; i < NV; i++) logits_changed += p.policy.logits()[i] != logits0[i];
  CHECK(logits_changed == 0);
}

TEST_CASE("posttrain/grpo_trainer: a micro-batched reference differs from the policy only by float rounding") {
  // ref_batch 3 on 16 sequences (the last micro-batch is short): the KL and the gradient it leaves in a degenerate
  // step are rounding noise. Bounds: per-token |lp - lp_ref| ~ 1e-7 gives k3 ~ (1e-7)^2 / 2 ~ 1e-14 (the KL must be
  // < 1e-10), and a gradient of beta * (lp - lp_ref) ~ 1e-8 per token (the norm must be < 1e-5; a misaligned micro-
  // batch gives KL and norm of order 1).
  Tokenizer tok;
  Pair p;
  const Rollout r = fixed_rollout(p.policy, tok);
  GRPOTrainOptions opt;
  opt.grpo.num_generations = 4;
  opt.ref_batch = 3;
  AdamW adam(p.policy.layout(), Role::policy);
  GRPOStepStats s = grpo_update(p.policy, &p.reference, adam, r, std::vector<double>(r.B, 1.0), opt, 0);
  CHECK(s.kl < 1e-10);
  CHECK(s.grad_norm < 1e-5);
  MESSAGE("micro-batched reference: kl " << s.kl << ", grad norm " << s.grad_norm);
}

TEST_CASE("posttrain/grpo_trainer: runs from an SFT checkpoint, logs every field, evaluates and checkpoints") {
  const std::string dir = temp_dir("e2e");
  // A short SFT run on nano writes the starting checkpoint. max_seq_len 160 so level-1/2 prompts (~60-110
  // characters) leave room for a completion.
  const std::string sft = tinyds::test::sft_checkpoint(tinyds::test::short_sft_config(160, 8, 4), dir + "/sft");
  REQUIRE(fs::exists(sft));

  GRPOTrainOptions o;
  o.init_ckpt = sft;
  o.out_dir = dir + "/grpo";
  o.steps = 3;
  o.prompts_per_step = 2;
  o.grpo.num_generations = 4;
  o.num_iterations = 2;  // the mu > 1 path: the second pass sees a ratio != 1
  o.max_completion_length = 16;
  o.levels = {1, 2};
  o.n_train = 20;
  o.eval_every = 2;
  o.eval_problems = 4;
  o.ckpt_every = 2;
  o.lr = 1e-3f;
  // An 8-step SFT model earns no reward, so every group is degenerate and the policy gradient is exactly 0 (the
  // router biases are frozen in post-training). Weight decay still moves the matrices each optimizer step, so the
  // KL and checkpoint checks below see a trained policy.
  o.weight_decay = 0.1f;
  o.quiet = true;
  const GRPOResult r = run_grpo(o);

  REQUIRE(r.steps.size() == 3);
  REQUIRE(r.before.size() == 2);
  REQUIRE(r.after.size() == 2);
  CHECK(r.before[0].level == 1);
  CHECK(r.after[1].level == 2);
  CHECK(r.evals.size() == 6);  // steps 0, 2 and 3, two levels each
  CHECK(r.steps[0].kl == 0.0);  // the first pass of step 1 runs the untouched policy: identical to the reference
  CHECK(r.steps[2].kl > 0.0);   // after 4 optimizer steps the policy has moved; the reference has not
  for (const GRPOStepStats& s : r.steps) {
    CHECK(s.reward_mean >= 0.0);
    CHECK(s.reward_mean <= 2.0);  // accuracy + format, weights 1 and 1
    CHECK(s.completion_len > 0.0);
    CHECK(s.completion_len <= 16.0);
    CHECK(s.entropy > 0.0);
    CHECK(s.degenerate_groups >= 0);
    CHECK(s.degenerate_groups <= 2);
  }
  CHECK(r.peak_bytes > 0);

  // metrics.jsonl: one line per step with every field, and one per (evaluation, level).
  const char* fields[] = {"step", "loss", "reward_mean", "reward_std", "accuracy", "format_rate", "kl",
                          "clip_fraction", "entropy", "completion_len", "eos_rate", "degenerate_groups",
                          "num_groups", "grad_norm", "lr", "step_s", "rollout_s", "tokens", "tokens_per_s",
                          "peak_bytes", "elapsed_s", "maxvio"};
  std::ifstream f(o.out_dir + "/metrics.jsonl");
  std::string line;
  int step_lines = 0, eval_lines = 0;
  while (std::getline(f, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("eval_accuracy")) { eval_lines++; continue; }
    step_lines++;
    for (const char* k : fields) CHECK_MESSAGE(j.contains(k), "metrics line ", step_lines, " lacks ", k);
  }
  CHECK(step_lines == 3);
  CHECK(eval_lines == 6);

  // Checkpoints: latest at step 2, final at the end; the final one loads and differs from the SFT weights.
  CHECK(fs::exists(o.out_dir + "/latest.safetensors"));
  REQUIRE(r.final_ckpt == o.out_dir + "/final.safetensors");
  const LoadedCheckpoint a = load_checkpoint(sft), b = load_checkpoint(r.final_ckpt);
  REQUIRE(a.params.size() == b.params.size());
  std::size_t changed = 0;
  for (std::size_t i = 0; i < a.params.size(); i++) changed += a.params[i] != b.params[i];
  CHECK(changed > a.params.size() / 2);
  CHECK(b.state.step == 6);  // 3 RL steps x num_iterations 2 optimizer steps
  CHECK(b.state.adam_t == 6);

  // REINFORCE runs through the same loop.
  GRPOTrainOptions ro = o;
  ro.algo = RLAlgo::reinforce;
  ro.num_iterations = 1;
  ro.steps = 1;
  ro.eval_problems = 0;
  ro.out_dir = dir + "/reinforce";
  const GRPOResult rr = run_grpo(ro);
  CHECK(rr.steps.size() == 1);
  CHECK(rr.before.empty());
  CHECK(fs::exists(ro.out_dir + "/final.safetensors"));
  fs::remove_all(dir);
}

TEST_CASE("posttrain/grpo_trainer: ptx_coef adds gamma times the SFT objective's gradient to the RL gradient") {
  // PPO-ptx (grpo_trainer.h): the pass's gradient is gamma * d(SFT objective) on the SFT batch plus the RL loss's
  // own. Checked against an independent SFT backward of the same starting weights: with the clip off, grads()
  // after the update hold the summed gradient, so (grads with ptx) - (grads without) must equal gamma * that
  // gradient. A missing gamma doubles the difference; an SFT forward placed after the RL forward would leave the
  // RL backward the wrong activations and change the RL part.
  Tokenizer tok;
  Batch sft;  // "3+4=7" and "9-5=4", the loss on the answers only (targets -1 on the prompt), as `tinyds sft`
  sft.B = 2;
  sft.T = 6;
  for (const char* text : {"3+4=7", "9-5=4"}) {
    std::vector<int> ids = {Tokenizer::BOS};
    for (int id : tok.encode(text)) ids.push_back(id);
    ids.push_back(Tokenizer::EOS);  // BOS + 5 characters + EOS = T + 1 tokens
    REQUIRE(static_cast<int>(ids.size()) == sft.T + 1);
    for (int t = 0; t < sft.T; t++) {
      sft.inputs.push_back(ids[t]);
      sft.targets.push_back(t >= 4 ? ids[t + 1] : -1);  // predicts the answer digit and <eos>
    }
  }
  const float gamma = 0.5f;
  auto grads_after_update = [&](bool with_ptx) {
    Pair p;
    const Rollout r = fixed_rollout(p.policy, tok);
    std::vector<double> rewards(r.B);
    for (int b = 0; b < r.B; b++) rewards[b] = b % 2 == 0 ? 1.0 : 0.0;
    GRPOTrainOptions opt;
    opt.grpo.num_generations = 4;
    opt.max_grad_norm = 0;  // no clip: grads() keep the unscaled sum
    opt.ref_batch = 0;
    opt.ptx_coef = with_ptx ? gamma : 0.0f;
    AdamW adam(p.policy.layout(), Role::policy);
    grpo_update(p.policy, &p.reference, adam, r, rewards, opt, 0, nullptr, with_ptx ? &sft : nullptr);
    return std::vector<float>(p.policy.grads(), p.policy.grads() + p.policy.num_params());
  };
  const std::vector<float> rl = grads_after_update(false), both = grads_after_update(true);
  Pair q;  // the same starting weights
  q.policy.zero_grad();
  q.policy.forward(sft.inputs.data(), sft.targets.data(), sft.B, sft.T);
  q.policy.backward();
  const std::vector<float> g_sft(q.policy.grads(), q.policy.grads() + q.policy.num_params());
  double sft_max = 0, rl_max = 0, err = 0;
  for (std::size_t i = 0; i < g_sft.size(); i++) {
    sft_max = std::max(sft_max, std::fabs(static_cast<double>(g_sft[i])));
    rl_max = std::max(rl_max, std::fabs(static_cast<double>(rl[i])));
    err = std::max(err, std::fabs(static_cast<double>(both[i]) - rl[i] - gamma * static_cast<double>(g_sft[i])));
  }
  REQUIRE(sft_max > 1e-3);  // both parts are far from zero, so the check below has something to tell apart
  REQUIRE(rl_max > 1e-3);
  // The two parts are summed in float by the GEMMs that accumulate into grads(), in another order than the
  // separate sums: rounding of ~1e-7 relative to the largest gradient entry (measured: 1.1e-7 against a largest
  // entry of 1.17). 1e-5 of it is far below the smallest wrong answer (a missing gamma: 0.5 * sft_max).
  MESSAGE("ptx: max |grad - rl - gamma * sft| = " << err << " (largest |sft| " << sft_max << ", |rl| " << rl_max
                                                       << ")");
  CHECK(err <= 1e-5 * std::max(sft_max, rl_max));
  // An SFT batch is required when the coefficient is on.
  AdamW adam(q.policy.layout(), Role::policy);
  GRPOTrainOptions o;
  o.grpo.num_generations = 4;
  o.ptx_coef = gamma;
  const Rollout r = fixed_rollout(q.policy, tok);
  CHECK(has(error_of([&] { grpo_update(q.policy, &q.reference, adam, r, std::vector<double>(r.B, 0.0), o, 0); }),
            "needs an SFT batch"));
}

TEST_CASE("posttrain/grpo_trainer: bad options are errors naming the option and the value") {
  GRPOTrainOptions o;
  CHECK(has(error_of([&] { run_grpo(o); }), "--init"));  // no checkpoint given
  o.init_ckpt = "/nonexistent/sft.safetensors";
  CHECK(has(error_of([&] { run_grpo(o); }), "/nonexistent/sft.safetensors"));
  o.grpo.num_generations = 1;
  std::string e = error_of([&] { validate(o); });
  CHECK(has(e, "--num-generations = 1"));
  CHECK(has(e, "at least 2"));
  o.grpo.num_generations = 4;
  o.algo = RLAlgo::reinforce;
  o.num_iterations = 2;
  CHECK(has(error_of([&] { validate(o); }), "--num-iterations = 2"));
  o.algo = RLAlgo::grpo;
  o.temperature = 0;
  CHECK(has(error_of([&] { validate(o); }), "--temperature = 0"));
  o.temperature = 1;
  o.levels = {2, 7};
  CHECK(has(error_of([&] { validate(o); }), "--levels = 7"));
  o = GRPOTrainOptions{};
  o.init_ckpt = "x";
  o.ptx_coef = -1;
  CHECK(has(error_of([&] { validate(o); }), "--ptx-coef = -1"));
  CHECK(has(error_of([] { parse_grpo_loss_type("ppo"); }), "'ppo'"));
  CHECK(has(error_of([] { parse_rl_algo("dpo"); }), "'dpo'"));
  // The update itself refuses rewards that do not match the rollout.
  Tokenizer tok;
  Pair p;
  const Rollout r = fixed_rollout(p.policy, tok);
  AdamW adam(p.policy.layout(), Role::policy);
  GRPOTrainOptions g;
  g.grpo.num_generations = 4;
  CHECK(has(error_of([&] { grpo_update(p.policy, &p.reference, adam, r, std::vector<double>(3, 0.0), g, 0); }),
            "3 rewards for 16 completions"));
}

TEST_CASE("posttrain/grpo_trainer: on one prompt the sampled accuracy rises to near 1 within a few dozen steps") {
  // The pipeline end to end (rollout, rule reward, group advantages, loss, backward, AdamW) on the one problem the
  // starting checkpoint was fine-tuned on (tests/util/one_problem_ckpt.h): it writes the solution and then the
  // right or a wrong final answer about half the time each. GRPO must learn to take the right one: the sampled
  // accuracy (the accuracy reward of the 32 completions) ends near 1 and clearly above where it started. A
  // flipped gradient sign drives it to 0, an update that does nothing leaves it near 0.5. Measured with the CLI
  // equivalent (`tinyds grpo --init <this checkpoint> --levels 1 --n-train 1 --seed 1234 --prompts-per-step 1
  // --num-generations 32 --beta 0 --max-completion-length 48 --lr 3e-4 --warmup 0`): 0.61 over steps 1-8, 0.97
  // over steps 9-16, 0.98-0.99 after. Thresholds: start is step 1 (32 samples before any update, a coin flip
  // ~0.5: 0.75 is ~3 standard deviations above it), end the mean over steps 26-30 (160 samples, one step's sampling
  // fluctuation moves it by < 0.1); 0.75, 0.9 and the margin 0.25 are far from both failure modes. lr 3e-4 (not the 1e-5 default): nano's weights are ~50x fewer and the test has one prompt.
  GRPOTrainOptions o;
  o.init_ckpt = tinyds::test::one_problem_ckpt();
  o.out_dir = temp_dir("grpo_learn");
  o.levels = {1};
  o.n_train = 1;
  o.seed = tinyds::test::kOneProblemSeed;  // the prompt pool's seed: the SFT problem
  o.prompts_per_step = 1;
  o.grpo.num_generations = 32;
  o.grpo.beta = 0;  // no pull back to the reference: the test is about the policy gradient
  o.max_completion_length = 48;
  o.steps = 30;
  o.lr = 3e-4f;
  o.warmup_steps = 0;
  o.eval_problems = 0;
  o.quiet = true;
  const GRPOResult r = run_grpo(o);
  REQUIRE(r.steps.size() == 30);
  // start: step 1's 32 samples, drawn before any update (the checkpoint's coin flip, ~0.5); steps 2-3 already learn.
  const double start = r.steps[0].accuracy;
  double end = 0;
  for (int i = 25; i < 30; i++) end += r.steps[i].accuracy / 5;
  MESSAGE("GRPO on one prompt: sampled accuracy " << start << " (step 1) -> " << end << " (steps 26-30)");
  CHECK(start < 0.75);  // the starting point leaves room to learn (else the test would prove nothing)
  CHECK(end >= 0.9);
  CHECK(end - start >= 0.25);
}

TEST_CASE("posttrain/grpo_trainer: dynamic sampling trains on groups partly right, partly wrong") {
  // The coin-flip checkpoint (tests/util/one_problem_ckpt.h): each completion's final answer is right about half the
  // time, so a group of G = 4 is mixed (some right, some wrong) ~7/8 of the time and all 4 groups of a batch ~0.6 of
  // it. With sample_rounds 4 a step draws P = 4 prompts, and 3 batches of 4 more at once if fewer than 4 groups were
  // mixed, and trains on mixed ones first: the trained batch has no degenerate group once 4 mixed ones were found,
  // at most 4 - mixed otherwise. The same run with sample_rounds 1 trains on whatever one draw gave, degenerate
  // groups included (the check below that it has some keeps this test meaningful: ~0.4 of the steps). Expected
  // counts are the invariants of the selection, not measured values.
  auto run = [](int rounds, const std::string& dir) {
    GRPOTrainOptions o;
    o.init_ckpt = tinyds::test::one_problem_ckpt();
    o.out_dir = temp_dir(dir);
    o.levels = {1};
    o.n_train = 1;
    o.seed = tinyds::test::kOneProblemSeed;
    o.prompts_per_step = 4;
    o.grpo.num_generations = 4;
    o.max_completion_length = 48;
    o.steps = 8;
    o.sample_rounds = rounds;
    o.eval_problems = 0;
    o.quiet = true;
    return run_grpo(o);
  };
  const int P = 4, R = 4;
  const GRPOResult plain = run(1, "grpo_ds_off");
  int plain_degenerate = 0;
  for (const GRPOStepStats& s : plain.steps) {
    CHECK(s.sampled_groups == P);
    plain_degenerate += s.degenerate_groups;
  }
  REQUIRE(plain_degenerate > 0);  // without the filter some trained groups teach nothing

  const GRPOResult dyn = run(R, "grpo_ds_on");
  REQUIRE(dyn.steps.size() == 8);
  int stopped_early = 0;
  for (const GRPOStepStats& s : dyn.steps) {
    INFO("step ", s.step, ": sampled ", s.sampled_groups, ", mixed ", s.mixed_groups, ", degenerate ", s.degenerate_groups);
    CHECK((s.sampled_groups == P || s.sampled_groups == P * R));
    CHECK(s.mixed_groups <= s.sampled_groups);
    if (s.sampled_groups < P * R) {  // it stopped before the last round: only because enough were mixed
      CHECK(s.mixed_groups >= P);
      stopped_early++;
    }
    CHECK(s.degenerate_groups == std::max(0, P - s.mixed_groups));
  }
  CHECK(stopped_early > 0);  // the first batch alone was enough in ~0.6 of the steps
  CHECK(stopped_early < 8);  // and not in the others (else the second draw was never exercised)
}
