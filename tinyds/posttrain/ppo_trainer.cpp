// tinyds/posttrain/ppo_trainer.cpp — see ppo_trainer.h.
//
// Shapes: B sequences, T packed columns, N = B*T, V vocab, C d_model.
#include "tinyds/posttrain/ppo_trainer.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/core/rng.h"
#include "tinyds/core/timer.h"
#include "tinyds/data/batch.h"
#include "tinyds/ops/adamw.h"
#include "tinyds/posttrain/frozen.h"
#include "tinyds/posttrain/losses/gae.h"
#include "tinyds/posttrain/reward_model_trainer.h"
#include "tinyds/posttrain/losses/logprobs.h"
#include "tinyds/posttrain/ptx.h"
#include "tinyds/posttrain/trainer_common.h"
#include "tinyds/train/finite_check.h"
#include "tinyds/train/progress.h"
#include "tinyds/train/schedule.h"
#include "tinyds/train/trainer.h"

namespace tinyds {

using json = nlohmann::json;

void copy_weights(const Transformer<float>& from, Transformer<float>& to) {
  if (model_config_to_json(from.config()) != model_config_to_json(to.config()))
    throw_error("copy_weights: model configs differ: ", model_config_to_json(from.config()).dump(), " vs ",
                model_config_to_json(to.config()).dump());
  std::copy(from.params(), from.params() + from.num_params(), to.params());
  std::copy(from.moe_bias(), from.moe_bias() + from.moe_bias_size(), to.moe_bias());
}

namespace {

const PPOTrainerOptions& check_options(const PPOTrainerOptions& o) {
  if (o.steps < 1) throw_error("ppo: steps = ", o.steps, " must be >= 1");
  if (o.batch_size < 2) throw_error("ppo: batch_size = ", o.batch_size, " must be >= 2 (advantage whitening needs 2 tokens)");
  if (o.ppo.num_ppo_epochs < 1) throw_error("ppo: num_ppo_epochs = ", o.ppo.num_ppo_epochs, " must be >= 1");
  if (!(o.lr > 0)) throw_error("ppo: learning_rate = ", o.lr, " must be > 0");
  if (o.warmup_steps < 0) throw_error("ppo: warmup_steps = ", o.warmup_steps, " must be >= 0");
  if (o.freezing_actor_steps < 0 || o.freezing_actor_steps >= o.steps)
    throw_error("ppo: freezing_actor_steps = ", o.freezing_actor_steps, " must be in [0, steps = ", o.steps,
                "): the first freezing_actor_steps steps train only the critic (--freezing-actor-steps 0: the policy "
                "from the first step)");
  if (!(o.ppo.kl_coef >= 0)) throw_error("ppo: kl_coef = ", o.ppo.kl_coef, " must be >= 0");
  if (!(o.ppo.gamma >= 0 && o.ppo.gamma <= 1)) throw_error("ppo: gamma = ", o.ppo.gamma, " must be in [0, 1]");
  if (!(o.ppo.lam >= 0 && o.ppo.lam <= 1)) throw_error("ppo: lam = ", o.ppo.lam, " must be in [0, 1]");
  if (!(o.ppo.cliprange > 0 && o.ppo.cliprange < 1)) throw_error("ppo: cliprange = ", o.ppo.cliprange, " must be in (0, 1)");
  if (!(o.ppo.cliprange_value > 0)) throw_error("ppo: cliprange_value = ", o.ppo.cliprange_value, " must be > 0");
  if (!(o.ppo.vf_coef >= 0)) throw_error("ppo: vf_coef = ", o.ppo.vf_coef, " must be >= 0");
  if (!(o.temperature > 0)) throw_error("ppo: temperature = ", o.temperature, " must be > 0 (PPO needs sampled completions and their log-probs)");
  if (o.response_length < 1) throw_error("ppo: response_length = ", o.response_length, " must be >= 1");
  if (o.n_prompts < 1) throw_error("ppo: n_prompts = ", o.n_prompts, " must be >= 1");
  if (o.warmup_steps < 0) throw_error("ppo: warmup_steps = ", o.warmup_steps, " must be >= 0");
  if (o.levels.empty()) throw_error("ppo: levels is empty");
  for (int l : o.levels)
    if (l < 1 || l > 4) throw_error("ppo: levels contains ", l, ": each level must be 1..4");
  for (int l : o.eval_levels)
    if (l < 1 || l > 4) throw_error("ppo: eval_levels contains ", l, ": each level must be 1..4");
  if (o.eval_problems < 0) throw_error("ppo: eval_problems = ", o.eval_problems, " must be >= 0");
  if (o.max_grad_norm < 0) throw_error("ppo: max_grad_norm = ", o.max_grad_norm, " must be >= 0");
  if (!(o.ptx_coef >= 0)) throw_error("ppo: ptx_coef = ", o.ptx_coef, " must be >= 0 (0 = off)");
  return o;
}

// Validated before any model is built from it.
const Config& check_config(const Config& c) {
  c.validate();
  return c;
}

// Masked mean of x (n) over mask (n).
double masked_mean(const float* x, const float* mask, long n) {
  double s = 0, c = 0;
  for (long i = 0; i < n; i++) { s += static_cast<double>(mask[i]) * x[i]; c += mask[i]; }
  return c > 0 ? s / c : 0.0;
}

template <typename T>
void grow(Buffer<T>& b, std::size_t n, Role role, Category cat) {
  if (b.size() < n) b.reset(n, role, cat);
}

}  // namespace

PPOTrainerOptions ppo_recipe() {
  PPOTrainerOptions o;
  // From the demo's SFT checkpoints of seeds 1337, 2, 7 and 3 (levels 2-3, 100 steps of 16 prompts; change on 1,000
  // held-out problems, level 1 / 2 / 3; notebooks/EXPERIMENTS.md, "PPO at its defaults" and "PPO with the SFT
  // term"): lr 1e-5 alone -0.8 / -1.3 / +3.9 and -1.9 / -4.4 / -1.1 on the first two; lr 5e-6 alone +0.1 / +0.3 /
  // +2.7, -0.5 / -0.8 / -0.6, -0.3 / -1.4 / +0.8, -0.2 / -1.7 / +1.2 (level 2 beyond a point on two seeds); lr 1e-5
  // with the SFT term at gamma 1 -0.1 / 0.0 / +2.1, +0.4 / -0.4 / -0.4, -0.5 / -0.9 / +0.2, -0.5 / -0.4 / +0.6: every
  // level within a point on all four, level 3 up beyond noise on the default seed only. At lr 1e-4 `tinyds ppo
  // --steps 30` took a level-1 SFT model from 75.0 to 24.0%.
  o.lr = 1e-5f;
  o.ptx_coef = 1.0f;
  return o;
}

uint64_t ppo_sampling_seed(uint64_t seed, int step) { return mix64(seed ^ mix64(0x5a3b1e + static_cast<uint64_t>(step))); }

PPOTrainer::PPOTrainer(const Config& cfg, const Tokenizer& tok, const PPOTrainerOptions& opt,
                       const LoadedCheckpoint* init)
    : cfg_(check_config(init ? init->config : cfg)),
      tok_(init ? init->tokenizer : tok),
      opt_(check_options(opt)),
      policy_(cfg_.model, Role::policy),
      reference_(cfg_.model, Role::reference),
      critic_(cfg_.model, Role::critic),
      policy_opt_(policy_.layout(), Role::policy),
      critic_opt_(critic_),
      pool_(opt_.levels, std::max(1, opt_.n_prompts / static_cast<int>(opt_.levels.size())), opt_.seed, tok_,
            cfg_.model.max_seq_len, "ppo", opt_.quiet) {
  if (tok_.vocab_size() > cfg_.model.vocab_size)
    throw_error("ppo: model.vocab_size = ", cfg_.model.vocab_size, " is smaller than the tokenizer's ", tok_.vocab_size());
  if (init) load_params_into(*init, policy_);
  else policy_.init_weights(cfg_.train.seed);
  copy_weights(policy_, reference_);       // the frozen reference is the initial policy
  copy_weights(policy_, critic_.trunk());  // trl: the value model starts from a trained model, its head fresh
  if (opt_.ptx_coef > 0) ptx_ = ptx_batches(cfg_, tok_);
  if (!opt_.reward_model.empty()) {  // a trained reward model (tinyds rm): it must read the same tokens
    LoadedRewardModel rm = load_reward_model(opt_.reward_model);
    if (rm.tokenizer.to_json() != tok_.to_json() || rm.config.model.vocab_size != cfg_.model.vocab_size)
      throw_error("--reward-model ", opt_.reward_model, ": its tokenizer / vocab_size (", rm.config.model.vocab_size,
                  ") differ from the policy's (", cfg_.model.vocab_size, ")");
    reward_model_ = std::move(rm.model);
  } else if (opt_.use_reward_model) {
    reward_model_ = std::make_unique<Critic<float>>(cfg_.model, Role::reward);
    copy_weights(policy_, reward_model_->trunk());
  }
}

namespace {
// `tinyds ppo` names its learning rate --learning-rate (trl's name).
DivergenceHint ppo_hint() { return {"--learning-rate", "--max-grad-norm", "--warmup"}; }
}  // namespace

PPOExperience PPOTrainer::make_experience(int step) { return make_experience(step, prompt_indices(step)); }

PPOExperience PPOTrainer::make_experience(int step, const std::vector<int>& idx) {
  Timer timer;
  if (idx.size() < 2) throw_error("ppo: make_experience needs at least 2 prompts, got ", idx.size());
  std::vector<std::vector<int>> prompts;
  for (std::size_t k = 0; k < idx.size(); k++) {
    if (idx[k] < 0 || idx[k] >= static_cast<int>(pool_.size()))
      throw_error("ppo: prompt index ", idx[k], " at position ", k, " is outside [0, ", pool_.size(), ")");
    prompts.push_back(encode_prompt(pool_[idx[k]], tok_));
  }

  // 1. Rollout: one sampled completion per prompt with the sampling policy's log-probs.
  RolloutOptions ro;
  ro.sampling.temperature = opt_.temperature;
  ro.sampling.max_new_tokens = opt_.response_length;
  ro.sampling.seed = ppo_sampling_seed(opt_.seed, step);
  ro.n_tokens = tok_.vocab_size();
  ro.eos = Tokenizer::EOS;
  ro.pad = Tokenizer::PAD;
  ro.batch = static_cast<int>(idx.size());
  ro.role = Role::policy;
  PPOExperience e;
  e.step = step;
  if (ptx_) e.ptx = ptx_->batch(step).batch;
  const DivergenceHint hint = ppo_hint();
  {
    // The last update left the weights finite but may have made the logits overflow: that is this step's
    // divergence (train/finite_check.h), as is the critic's below.
    const Rollout r = diverged_if_throws(step + 1, hint, [&] { return rollout(policy_, prompts, ro); });
    e.batch = pack_for_forward(r, Tokenizer::PAD, Role::policy);
    // 2. Scores: the rule reward of each completion (R1: accuracy + format).
    double acc = 0, fmt = 0, eos = 0, len = 0;
    for (int b = 0; b < r.B; b++) {
      const RewardBreakdown s = score_completion_tokens(r.completion(b), r.completion_len[b], tok_,
                                                        pool_[idx[b]].final_answer, opt_.reward_rules);
      e.scores.push_back(s.total);
      acc += s.accuracy; fmt += s.format; eos += r.ended_with_eos[b] ? 1 : 0; len += r.completion_len[b];
    }
    e.accuracy = acc / r.B; e.format_rate = fmt / r.B; e.eos_rate = eos / r.B; e.completion_length = len / r.B;
  }
  const int B = e.batch.B, T = e.batch.T;
  const long N = static_cast<long>(B) * T;
  const float tau = opt_.temperature;
  const float* mask = e.batch.mask.data();
  e.ctargets.reset(N, Role::policy, Category::rollout);
  for (long n = 0; n < N; n++) e.ctargets[n] = mask[n] != 0.0f ? e.batch.targets[n] : -1;

  // lp_ref: the frozen reference on the same tokens.
  e.ref_logprobs.reset(N, Role::reference, Category::rollout);
  frozen_logprobs(e.ref_logprobs.data(), reference_, e.batch.inputs.data(), e.ctargets.data(), B, T, tau);
  // values_old: the critic before this step's updates.
  e.values.reset(N, Role::critic, Category::rollout);
  const float* v = diverged_if_throws(step + 1, hint, [&] { return critic_.forward(e.batch.inputs.data(), B, T); });
  std::copy(v, v + N, e.values.data());
  if (reward_model_) {  // a learned score: the reward model's head at each completion's last token
    Buffer<float> rm(N, Role::reward, Category::rollout);  // (B, T) head values at every position
    frozen_values(rm.data(), *reward_model_, e.batch.inputs.data(), B, T);
    for (int b = 0; b < B; b++) {
      int last = -1;
      for (int t = 0; t < T; t++) if (mask[static_cast<long>(b) * T + t] != 0.0f) last = t;
      e.scores[b] = last >= 0 ? rm[static_cast<long>(b) * T + last] : 0.0;
    }
  }
  score_experience(e);
  e.rollout_seconds = timer.seconds();
  return e;
}

void PPOTrainer::score_experience(PPOExperience& e) const {
  const int B = e.batch.B, T = e.batch.T;
  const long N = static_cast<long>(B) * T;
  const float* mask = e.batch.mask.data();
  if (static_cast<int>(e.scores.size()) != B)
    throw_error("ppo: experience has ", e.scores.size(), " scores for ", B, " sequences");
  double sum = 0, sq = 0;
  for (double s : e.scores) { sum += s; sq += s * s; }
  e.reward_mean = sum / B;
  e.reward_std = B > 1 ? std::sqrt(std::max(0.0, (sq - sum * sum / B) / (B - 1))) : 0.0;

  // 3. Per-token rewards (k1 KL penalty + score at the last token), GAE, whitened advantages.
  const float* lp_old = e.batch.old_logprobs.data();
  std::vector<float> scores(e.scores.begin(), e.scores.end());
  if (e.rewards.size() != static_cast<std::size_t>(N)) e.rewards.reset(N, Role::policy, Category::rollout);
  ppo_rewards(e.rewards.data(), lp_old, e.ref_logprobs.data(), scores.data(), mask, B, T, opt_.ppo.kl_coef);
  if (e.advantages.size() != static_cast<std::size_t>(N)) e.advantages.reset(N, Role::policy, Category::rollout);
  if (e.returns.size() != static_cast<std::size_t>(N)) e.returns.reset(N, Role::critic, Category::rollout);
  compute_gae(e.advantages.data(), e.returns.data(), e.rewards.data(), e.values.data(), mask, B, T, opt_.ppo.gamma,
              opt_.ppo.lam);
  masked_whiten(e.advantages.data(), e.advantages.data(), mask, N);
  double kl_sum = 0, count = 0;
  for (long n = 0; n < N; n++)
    if (mask[n] != 0.0f) { kl_sum += static_cast<double>(lp_old[n]) - e.ref_logprobs[n]; count++; }
  e.kl = kl_sum / B;
  e.kl_per_token = count > 0 ? kl_sum / count : 0.0;
}

PPOUpdateStats PPOTrainer::update(const PPOExperience& e) {
  const int B = e.batch.B, T = e.batch.T, V = cfg_.model.vocab_size;
  const long N = static_cast<long>(B) * T;
  const float tau = opt_.temperature;
  const float* mask = e.batch.mask.data();
  grow(lp_, N, Role::policy, Category::activations);
  grow(dlp_, N, Role::policy, Category::activations);
  grow(entropy_, N, Role::policy, Category::activations);
  grow(dlogits_, static_cast<std::size_t>(N) * V, Role::policy, Category::activations);
  grow(dvalues_, N, Role::critic, Category::activations);
  PPOUpdateStats st;

  // Forward: the current policy's log-probs and entropy, the current critic's values. A diverged step
  // (train/finite_check.h) stops below, before either optimizer touches its model's weights.
  const int step = e.step + 1;  // 1-based, as in metrics.jsonl
  const DivergenceHint hint = ppo_hint();
  const bool actor_frozen = e.step < opt_.freezing_actor_steps;  // only the critic learns (its loss needs no policy)
  policy_.zero_grad();
  if (ptx_ && !actor_frozen) {  // first, so the PPO forward below leaves its activations for the PPO backward
    if (!e.ptx) throw_error("ppo: ptx_coef = ", opt_.ptx_coef, " needs the experience's SFT batch (make_experience)");
    st.ptx_loss = diverged_if_throws(step, hint, [&] { return ptx_gradient(policy_, *e.ptx, opt_.ptx_coef); });
  }
  diverged_if_throws(step, hint, [&] { policy_.forward(e.batch.inputs.data(), nullptr, B, T); });
  logprobs_forward(lp_.data(), policy_.logits(), e.ctargets.data(), static_cast<int>(N), V, tau);
  entropy_forward(entropy_.data(), policy_.logits(), e.ctargets.data(), static_cast<int>(N), V, tau);
  st.entropy = masked_mean(entropy_.data(), mask, N);
  critic_.zero_grad();
  const float* values = diverged_if_throws(step, hint, [&] { return critic_.forward(e.batch.inputs.data(), B, T); });
  st.value_mean = masked_mean(values, mask, N);

  // L = L_pg + vf_coef L_vf (ppo.h); dlp flows into the policy, dvalues into the critic.
  st.loss = ppo_loss_forward(lp_.data(), values, e.batch.old_logprobs.data(), e.values.data(), e.advantages.data(),
                             e.returns.data(), mask, N, opt_.ppo);
  ppo_loss_backward(dlp_.data(), dvalues_.data(), 1.0, lp_.data(), values, e.batch.old_logprobs.data(),
                    e.values.data(), e.advantages.data(), e.returns.data(), mask, N, opt_.ppo);
  if (!actor_frozen) {
    logprobs_backward(dlogits_.data(), dlp_.data(), policy_.logits(), e.ctargets.data(), static_cast<int>(N), V, tau);
    policy_.backward_from_logits(dlogits_.data());
  }
  critic_.backward(dvalues_.data());
  std::vector<NamedTensor> grads = layout_tensors(policy_.layout(), policy_.grads());
  for (NamedTensor& t : critic_grads_named(critic_, "critic/", "value_head")) grads.push_back(std::move(t));
  check_step_finite(step, st.loss.loss, grads, hint);

  // Each model: clip its gradient, AdamW with the shared RL settings (rl_common.h), the router biases stay frozen in
  // post-training (moe_balance.h).
  if (!actor_frozen) st.policy_grad_norm = rl_optimizer_step(policy_, policy_opt_, opt_, policy_opt_.t()).grad_norm;
  st.critic_grad_norm = critic_clip_grad_norm(critic_, opt_.max_grad_norm);
  const float clr = opt_.critic_learning_rate < 0 ? opt_.lr : static_cast<float>(opt_.critic_learning_rate);
  critic_opt_.step(opt_.at(critic_opt_.t(), clr));
  check_params_finite(step, policy_.layout(), policy_.params(), hint);
  check_params_finite(step, critic_params_named(critic_, "critic/", "value_head"), hint);
  return st;
}

void PPOTrainer::save(const std::string& stem, int step) {
  // The policy as an ordinary checkpoint (tinyds eval / sample read it), the critic's trunk likewise, and the
  // value head as two small tensors.
  save_checkpoint(stem + ".safetensors", cfg_, tok_, policy_, &policy_opt_, TrainState{step, policy_opt_.t()});
  save_checkpoint(stem + ".critic.safetensors", cfg_, tok_, critic_.trunk(), &critic_opt_.trunk(),
                  TrainState{step, critic_opt_.t()});
  save_scalar_head(stem + ".value_head.safetensors", critic_, "value_head");
}

std::vector<LevelAccuracy> PPOTrainer::evaluate(int step, std::ostream& metrics) {
  const std::vector<int>& levels = opt_.eval_levels.empty() ? opt_.levels : opt_.eval_levels;
  const std::vector<std::vector<Problem>> heldout = heldout_per_level(cfg_, levels, opt_.eval_problems);
  return evaluate_levels(policy_, tok_, heldout, levels, opt_.response_length, step, metrics, "ppo", opt_.quiet);
}

PPOResult PPOTrainer::run() {
  std::ofstream metrics = open_metrics(opt_.out_dir);
  PPOResult res;
  Timer total;
  if (!opt_.quiet)
    std::printf("[ppo] %s: %.2fM parameters x (policy, reference, critic%s), %zu prompts (levels %s), B %d, "
                "response_length %d, %d steps x %d PPO epochs\n", cfg_.name.c_str(), policy_.num_params() / 1e6,
                reward_model_ ? ", reward model" : "", pool_.size(), json(opt_.levels).dump().c_str(),
                opt_.batch_size, opt_.response_length, opt_.steps, opt_.ppo.num_ppo_epochs);
  if (opt_.eval_problems > 0) res.before = evaluate(0, metrics);
  const int every = std::max(1, opt_.steps / 40);
  for (int step = 0; step < opt_.steps; step++) {
    Timer step_timer;
    PPOExperience e = make_experience(step);
    PPOUpdateStats first, last;
    double pg = 0, vf = 0, clip = 0, vclip = 0, akl = 0;
    for (int ep = 0; ep < opt_.ppo.num_ppo_epochs; ep++) {
      last = update(e);
      if (ep == 0) first = last;
      pg += last.loss.pg_loss; vf += last.loss.vf_loss; clip += last.loss.pg_clipfrac;
      vclip += last.loss.vf_clipfrac; akl += last.loss.approxkl;
    }
    const double k = opt_.ppo.num_ppo_epochs;
    const double seconds = step_timer.seconds();
    const long tokens = e.tokens();
    // tokens/s: teacher-forced positions of the packed batch per wall second of the whole step (rollout included)
    const double tps = tokens / std::max(seconds, 1e-9);
    Ledger& L = Ledger::global();
    json rec{{"step", step + 1}, {"actor_frozen", step < opt_.freezing_actor_steps},
             {"reward_mean", e.reward_mean}, {"reward_std", e.reward_std},
             {"accuracy", e.accuracy}, {"format_rate", e.format_rate}, {"eos_rate", e.eos_rate},
             {"kl", e.kl}, {"kl_per_token", e.kl_per_token},
             {"pg_loss", pg / k}, {"vf_loss", vf / k}, {"pg_clipfrac", clip / k}, {"vf_clipfrac", vclip / k},
             {"approxkl", akl / k}, {"entropy", first.entropy}, {"value_mean", first.value_mean},
             {"policy_grad_norm", first.policy_grad_norm}, {"critic_grad_norm", first.critic_grad_norm},
             {"ptx_loss", first.ptx_loss},
             {"completion_length", e.completion_length}, {"tokens", tokens}, {"tokens_per_s", tps},
             {"rollout_s", e.rollout_seconds}, {"step_s", seconds}, {"elapsed_s", total.seconds()},
             {"memory_bytes", L.current_total()}, {"memory_peak_bytes", L.peak_total()},
             {"rss_peak_bytes", peak_rss_bytes()}};
    std::string extra;  // the progress line below prints its own fields
    write_rl_step(metrics, rec, extra, policy_);
    res.steps.push_back({step + 1, e.reward_mean, e.accuracy, e.format_rate, e.kl, vf / k, clip / k, first.entropy,
                         e.completion_length, tps});
    if (!opt_.quiet && ((step + 1) % every == 0 || step + 1 == opt_.steps)) {
      const double elapsed = total.seconds();
      const double eta = elapsed / (step + 1) * (opt_.steps - step - 1);
      std::printf("[ppo] step %4d/%d | reward %s +- %s | acc %5.1f%% | format %5.1f%% | kl %s | clip %s | "
                  "vf %s | H %s | len %4.1f%s | %.1fK tok/s | mem %s | ETA %s%s\n", step + 1, opt_.steps,
                  format_fixed(e.reward_mean, 3).c_str(), format_fixed(e.reward_std, 3).c_str(), 100 * e.accuracy,
                  100 * e.format_rate, format_fixed(e.kl, 4).c_str(), format_fixed(clip / k, 3).c_str(),
                  format_fixed(vf / k, 4).c_str(), format_fixed(first.entropy, 3).c_str(), e.completion_length,
                  ptx_ ? (" | ptx " + format_fixed(first.ptx_loss, 4)).c_str() : "", tps / 1000,
                  format_bytes(L.current_total()).c_str(), format_duration(eta).c_str(),
                  step < opt_.freezing_actor_steps ? " | critic only" : "");
      std::fflush(stdout);
    }
    if (opt_.save && opt_.ckpt_every > 0 && (step + 1) % opt_.ckpt_every == 0 && step + 1 < opt_.steps)
      save(opt_.out_dir + "/latest", step + 1);
  }
  if (opt_.save) {
    save(opt_.out_dir + "/final", opt_.steps);
    res.final_ckpt = opt_.out_dir + "/final.safetensors";
  }
  if (opt_.eval_problems > 0) res.after = evaluate(opt_.steps, metrics);
  res.seconds = total.seconds();
  if (!opt_.quiet) {
    std::printf("[ppo] done: %d steps in %.1f s; checkpoint %s\n%s", opt_.steps, res.seconds,
                res.final_ckpt.empty() ? "(none)" : res.final_ckpt.c_str(), Ledger::global().table().c_str());
  }
  return res;
}

}  // namespace tinyds
