// tinyds/posttrain/grpo_step.cpp — one GRPO / REINFORCE update on a fixed rollout (grpo_trainer.h, steps 3-5),
// the rollout's rewards, and the options' checks. The loop around it is grpo_trainer.cpp.
//
// Shapes: B = P*G sequences in groups of G, T columns of the packed batch, V vocab, N = B*T.
#include <cmath>

#include "tinyds/core/error.h"
#include "tinyds/device/losses.h"
#include "tinyds/device/memory.h"
#include "tinyds/posttrain/frozen.h"
#include "tinyds/posttrain/grpo_trainer.h"
#include "tinyds/posttrain/losses/kl.h"
#include "tinyds/posttrain/losses/logprobs.h"
#include "tinyds/posttrain/losses/reinforce.h"
#include "tinyds/posttrain/ptx.h"
#include "tinyds/posttrain/trainer_common.h"
#include "tinyds/train/finite_check.h"

namespace tinyds {

const char* rl_algo_name(RLAlgo a) { return a == RLAlgo::grpo ? "grpo" : "reinforce"; }

RLAlgo parse_rl_algo(const std::string& s) {
  if (s == "grpo") return RLAlgo::grpo;
  if (s == "reinforce") return RLAlgo::reinforce;
  throw_error("--algo '", s, "' is not one of: grpo, reinforce");
}

GRPOLossType parse_grpo_loss_type(const std::string& s) {
  for (GRPOLossType t : {GRPOLossType::grpo, GRPOLossType::bnpo, GRPOLossType::dapo, GRPOLossType::dr_grpo})
    if (s == grpo_loss_type_name(t)) return t;
  throw_error("--loss-type '", s, "' is not one of: grpo, bnpo, dapo, dr_grpo");
}

void validate(const GRPOTrainOptions& o) {
  need(!o.init_ckpt.empty(), "--init", "(none)",
       "a checkpoint to start from is required (the policy and the frozen reference), e.g. from `tinyds sft`");
  need(o.grpo.num_generations >= 2, "--num-generations", o.grpo.num_generations,
       "must be at least 2: advantages compare completions of the same prompt (one alone has advantage 0)");
  need(o.prompts_per_step >= 1, "--prompts-per-step", o.prompts_per_step, "must be at least 1");
  need(o.num_iterations >= 1, "--num-iterations", o.num_iterations, "must be at least 1");
  need(o.algo == RLAlgo::grpo || o.num_iterations == 1, "--num-iterations", o.num_iterations,
       "must be 1 with --algo reinforce (an on-policy gradient: reusing a batch needs GRPO's ratio and clip)");
  need(o.steps >= 0, "--steps", o.steps, "must be >= 0");
  need(o.sample_rounds >= 1, "--sample-rounds", o.sample_rounds, "must be at least 1 (1 = no dynamic sampling)");
  need(o.max_completion_length >= 1, "--max-completion-length", o.max_completion_length, "must be at least 1");
  need(o.temperature > 0, "--temperature", o.temperature,
       "must be > 0: RL samples (greedy decoding would make every completion of a prompt the same)");
  need(o.top_k >= 0, "--top-k", o.top_k, "must be >= 0 (0 = off)");
  need(o.top_p > 0 && o.top_p <= 1, "--top-p", o.top_p, "must be in (0, 1]");
  need(o.grpo.beta >= 0, "--beta", o.grpo.beta, "must be >= 0");
  need(o.grpo.epsilon >= 0 && o.grpo.epsilon < 1, "--epsilon", o.grpo.epsilon, "must be in [0, 1)");
  need(o.grpo.clip_high() >= 0, "--epsilon-high", o.grpo.clip_high(), "must be >= 0");
  need(o.lr > 0, "--lr", o.lr, "must be > 0");
  need(o.ptx_coef >= 0, "--ptx-coef", o.ptx_coef, "must be >= 0 (0 = off)");
  need(o.warmup_steps >= 0, "--warmup", o.warmup_steps, "must be >= 0");
  need(o.max_grad_norm >= 0, "--max-grad-norm", o.max_grad_norm, "must be >= 0 (0 = off)");
  need(!o.levels.empty(), "--levels", "(empty)", "needs at least one level");
  for (int l : o.levels) need(l >= 1 && l <= 4, "--levels", l, "each level must be 1..4");
  for (int l : o.eval_levels) need(l >= 1 && l <= 4, "--eval-levels", l, "each level must be 1..4");
  need(o.n_train >= 1, "--n-train", o.n_train, "must be at least 1");
  need(o.prompt_distractors >= 0 && o.prompt_distractors <= 1, "--prompt-distractors", o.prompt_distractors,
       "must be a share in [0, 1]");
  need(o.eval_every >= 0, "--eval-every", o.eval_every, "must be >= 0");
  need(o.eval_problems >= 0, "--eval-problems", o.eval_problems, "must be >= 0");
  need(o.ckpt_every >= 0, "--ckpt-every", o.ckpt_every, "must be >= 0");
  need(o.log_every >= 1, "--log-every", o.log_every, "must be at least 1");
  need(o.ref_batch >= 0, "--ref-batch", o.ref_batch, "must be >= 0 (0 = the whole batch in one forward)");
  need(o.rollout_batch >= 1, "--rollout-batch", o.rollout_batch, "must be at least 1");
}

std::vector<RewardBreakdown> score_rollout(const Rollout& r, const Tokenizer& tok, const std::vector<int64_t>& answers,
                                           const RewardRules& w) {
  if (static_cast<int>(answers.size()) != r.B)
    throw_error("score_rollout: ", answers.size(), " answers for ", r.B, " completions");
  std::vector<RewardBreakdown> out(r.B);
  for (int b = 0; b < r.B; b++) out[b] = score_completion_tokens(r.completion(b), r.completion_len[b], tok, answers[b], w);
  return out;
}

long spare_steps(Buffer<float>& mask, const Rollout& r, const std::vector<double>& rewards, int G,
                 const Tokenizer& tok) {
  if (static_cast<int>(rewards.size()) != r.B || G < 1 || r.B % G != 0)
    throw_error("spare_steps: ", rewards.size(), " rewards for ", r.B, " completions in groups of ", G);
  const GroupStats gs = group_stats(rewards, G);
  const long T = static_cast<long>(mask.size()) / r.B;  // the packed batch's columns
  long spared = 0;
  for (int b = 0; b < r.B; b++) {
    const double mean = gs.mean[b / G];
    if (rewards[b] == mean) continue;  // advantage 0: nothing to spare
    const bool negative = rewards[b] < mean;
    // The completion's text, and for each character the completion token it came from (specials are several).
    std::string text;
    std::vector<int> owner;
    for (int j = 0; j < r.completion_len[b]; j++) {
      const std::string piece = tok.token_string(r.completion(b)[j]);
      text += piece;
      owner.insert(owner.end(), piece.size(), j);
    }
    for (const StepCheck& c : check_steps(text)) {
      if (c.right != negative) continue;  // a right line of a wrong completion, a wrong line of a right one
      for (std::size_t i = c.begin; i < c.end; i++) {
        // Completion token j is sequence position prompt_len + j, predicted by column prompt_len + j - 1.
        const long col = r.prompt_len[b] + owner[i] - 1;
        float& m = mask[static_cast<std::size_t>(b * T + col)];
        spared += m != 0.0f ? 1 : 0;
        m = 0.0f;
      }
    }
  }
  return spared;
}

namespace {

// sum_n m[n] x[n] / max(1, sum_n m[n]) in double: the per-token mean over completion tokens.
double masked_mean(const float* x, const float* m, long n) {
  double s = 0, c = 0;
  for (long i = 0; i < n; i++) { s += static_cast<double>(m[i]) * x[i]; c += m[i]; }
  return c > 0 ? s / c : 0.0;
}

// `host` (n) where the ops of the current device read it: the host array itself on the CPU, a copy in `keep`
// (device memory, Category::rollout) on cuda.
template <typename T>
const T* placed(Buffer<T>& keep, const T* host, std::size_t n, Role role) {
  if (!dev::on_cuda<float>()) return host;
  keep.reset(n, role, Category::rollout, Place::device);
  dev::from_host(keep.data(), host, n);
  return keep.data();
}

}  // namespace

GRPOStepStats grpo_update(Transformer<float>& policy, Transformer<float>* reference, AdamW& adam, const Rollout& r,
                          const std::vector<double>& rewards, const GRPOTrainOptions& opt, int optimizer_step,
                          const Tokenizer* tok, const Batch* ptx) {
  const int B = r.B, G = opt.grpo.num_generations;
  if (opt.ptx_coef > 0 && !ptx) throw_error("grpo_update: ptx_coef = ", opt.ptx_coef, " needs an SFT batch");
  if (static_cast<int>(rewards.size()) != B) throw_error("grpo_update: ", rewards.size(), " rewards for ", B, " completions");
  if (G < 2 || B % G != 0) throw_error("grpo_update: ", B, " completions are not groups of num_generations = ", G);
  if (!reference && opt.grpo.beta != 0)
    throw_error("grpo_update: beta = ", opt.grpo.beta, " needs a reference model (or set beta to 0)");
  // Device: every tensor below lives where the policy does, and every op runs there (tinyds/device/losses.h); the
  // rollout and the rewards arrive on the host and are uploaded, the loss and the metrics come back.
  const Device device = policy.device();
  const Place place = dev::place_of(device);
  if (reference && reference->device() != device)
    throw_error("grpo_update: the reference model is on ", device_name(reference->device()), ", the policy on ",
                device_name(device), "; both must be on the same device");
  if (device == Device::cuda && opt.algo != RLAlgo::grpo)
    throw_error("grpo_update: --algo ", rl_algo_name(opt.algo), " has no kernels (REINFORCE's loss is CPU only); ",
                "use --algo grpo or --device cpu");
  OnDevice scope(device);
  GRPOConfig gc = opt.grpo;
  gc.max_completion_length = opt.max_completion_length;  // dr_grpo's constant denominator
  GRPOStepStats s;

  // 3. Advantages (B), one per completion, broadcast over its tokens by the loss. The rewards were scored on the
  // host (rules on the decoded text) and are uploaded.
  const GroupStats gs = group_stats(rewards, G);
  s.reward_mean = gs.mean_reward;
  for (double sd : gs.std) s.reward_std += sd / gs.n_groups;
  Buffer<float> rew(B, Role::policy, Category::rollout), adv(B, Role::policy, Category::rollout, place), rew_dev;
  for (int b = 0; b < B; b++) rew[b] = static_cast<float>(rewards[b]);
  const float* rew_placed = placed(rew_dev, rew.data(), B, Role::policy);
  if (opt.algo == RLAlgo::grpo)
    s.degenerate_groups = dev::grpo_advantages(adv.data(), rew_placed, rew.data(), B, gc).degenerate_groups;
  else s.degenerate_groups = reinforce_advantages(adv.data(), rew.data(), B, G);

  // The rollout as a teacher-forced batch. Log-probs are wanted at sampled positions only, so the targets given to
  // logprobs.h are -1 elsewhere (pack_for_forward's targets also cover the prompt, for a plain LM loss).
  PolicyBatch pb = pack_for_forward(r, Tokenizer::PAD, Role::policy);
  if (opt.credit_steps) {
    if (!tok) throw_error("grpo_update: credit_steps needs the tokenizer (to read the calculator lines)");
    double sampled = 0;
    for (long n = 0; n < static_cast<long>(pb.mask.size()); n++) sampled += pb.mask[n];
    s.spared = sampled > 0 ? spare_steps(pb.mask, r, rewards, G, *tok) / sampled : 0.0;
  }
  const int T = pb.T, V = policy.config().vocab_size;
  const long N = static_cast<long>(B) * T;
  const float tau = r.logprob_temperature;  // the temperature the completions were sampled at (logprobs.h)
  Buffer<int> lp_targets(N, Role::policy, Category::rollout);  // (B, T)
  for (long n = 0; n < N; n++) lp_targets[n] = pb.mask[n] != 0.0f ? pb.targets[n] : -1;
  // Where the ops read them (uploaded once per step on cuda; the host arrays themselves on the CPU).
  Buffer<int> targets_dev;
  Buffer<float> mask_dev, old_dev;
  const int* targets = placed(targets_dev, lp_targets.data(), N, Role::policy);
  const float* mask = placed(mask_dev, pb.mask.data(), N, Role::policy);
  const float* lp_old = placed(old_dev, pb.old_logprobs.data(), N, Role::policy);

  // 4. Reference log-probs (B, T), once per step: the reference is frozen, so they do not change across the mu passes.
  Buffer<float> lp_ref;
  if (reference) {
    lp_ref.reset(N, Role::reference, Category::activations, place);
    frozen_logprobs(lp_ref.data(), *reference, pb.inputs.data(), targets, B, T, tau,
                    opt.ref_batch > 0 ? opt.ref_batch : B);
  }

  // 5. mu optimizer steps against the sampling policy's lp_old.
  Buffer<float> lp(N, Role::policy, Category::activations, place), dlp(N, Role::policy, Category::activations, place);
  Buffer<float> dlogits(static_cast<std::size_t>(N) * V, Role::policy, Category::activations, place);  // (B, T, V)
  double clip_sum = 0;
  // A diverged pass (train/finite_check.h) stops before the optimizer touches the weights; every pass of the mu
  // reports the trainer's step (1-based, as in metrics.jsonl).
  const int step = optimizer_step / opt.num_iterations + 1;
  for (int it = 0; it < opt.num_iterations; it++) {
    policy.zero_grad();
    if (opt.ptx_coef > 0) {  // first, so the RL forward below leaves its activations for the RL backward
      const double ptx_loss =
          diverged_if_throws(step, posttrain_hint(), [&] { return ptx_gradient(policy, *ptx, opt.ptx_coef); });
      if (it == 0) s.ptx_loss = ptx_loss;
    }
    diverged_if_throws(step, posttrain_hint(), [&] {
      policy.forward(pb.inputs.data(), nullptr, B, T);  // logits only: no LM loss, no MTP (targets == nullptr)
    });
    const float* logits = policy.logits();           // (B, T, V) in the policy's place
    dev::logprobs_forward(lp.data(), logits, targets, B * T, V, tau);
    if (it == 0) {
      Buffer<float> ent(N, Role::policy, Category::activations, place), ent_host;
      dev::entropy_forward(ent.data(), logits, targets, B * T, V, tau);
      const float* ent_h = ent.data();
      if (device == Device::cuda) {  // the mean is a metric: summed on the host, in the CPU's order
        ent_host.reset(N, Role::policy, Category::activations);
        dev::to_host(ent_host.data(), ent.data(), N);
        ent_h = ent_host.data();
      }
      s.entropy = masked_mean(ent_h, pb.mask.data(), N);
    }
    double loss;
    if (opt.algo == RLAlgo::grpo) {
      const float* ref_lp = reference ? lp_ref.data() : nullptr;
      const GRPOStats st = dev::grpo_loss_forward(lp.data(), lp_old, ref_lp, adv.data(), mask, B, T, gc);
      dev::grpo_loss_backward(dlp.data(), 1.0, lp.data(), lp_old, ref_lp, adv.data(), mask, B, T, gc);
      loss = st.loss;
      clip_sum += st.clip_ratio;
      if (it == 0) s.kl = st.kl;
    } else {
      loss = reinforce_loss_forward(lp.data(), adv.data(), pb.mask.data(), B, T);
      reinforce_loss_backward(dlp.data(), 1.0, adv.data(), pb.mask.data(), B, T);
      if (reference) {  // logged only: REINFORCE has no KL term
        double k = 0, c = 0;
        for (long n = 0; n < N; n++)
          if (pb.mask[n] != 0.0f) { k += kl_estimate(lp[n], lp_ref[n], KLEstimator::k3); c += 1; }
        s.kl = c > 0 ? k / c : 0.0;
      }
    }
    if (it == 0) s.loss = loss;
    // Backward: dL/dlp (B, T) -> dL/dlogits (B, T, V) -> the model (backward_from_logits accumulates into grads).
    dev::logprobs_backward(dlogits.data(), dlp.data(), logits, targets, B * T, V, tau);
    policy.backward_from_logits(dlogits.data());
    check_step_finite(step, loss, policy.layout(), policy.grads(), posttrain_hint());
    // Clip, AdamW at the warmup-then-constant lr, router biases (rl_common.h, as PPO's policy step).
    const RLStepNorm sn = rl_optimizer_step(policy, adam, opt, optimizer_step + it);
    check_params_finite(step, policy.layout(), policy.params(), posttrain_hint());
    s.grad_norm = sn.grad_norm;
    s.lr = sn.lr;
  }
  s.clip_fraction = clip_sum / opt.num_iterations;
  return s;
}

}  // namespace tinyds
