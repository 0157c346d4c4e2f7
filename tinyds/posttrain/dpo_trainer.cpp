// tinyds/posttrain/dpo_trainer.cpp — see dpo_trainer.h.
//
// Shapes: P pairs, B = 2P rows (chosen then rejected), T columns, V vocab, N = B*T.
#include "tinyds/posttrain/dpo_trainer.h"

#include <climits>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/core/rng.h"
#include "tinyds/core/timer.h"
#include "tinyds/ops/adamw.h"
#include "tinyds/posttrain/losses/kl.h"
#include "tinyds/posttrain/losses/logprobs.h"
#include "tinyds/posttrain/trainer_common.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/finite_check.h"
#include "tinyds/train/progress.h"
#include "tinyds/train/schedule.h"

namespace tinyds {

using json = nlohmann::json;

DPOLossType parse_dpo_loss_type(const std::string& s) {
  if (s == "sigmoid") return DPOLossType::sigmoid;
  if (s == "ipo") return DPOLossType::ipo;
  throw_error("--loss-type '", s, "' is not one of: sigmoid (DPO), ipo");
}

const char* dpo_loss_type_name(DPOLossType t) { return t == DPOLossType::ipo ? "ipo" : "sigmoid"; }

void validate(const DPOTrainOptions& o) {
  need(!o.init_ckpt.empty(), "--init", "(none)",
       "a checkpoint to start from is required (the policy and the frozen reference), e.g. from `tinyds sft`");
  need(o.dpo.beta > 0, "--beta", o.dpo.beta, "must be > 0 (the implicit reward is beta times a log-ratio)");
  need(o.steps >= 0, "--steps", o.steps, "must be >= 0");
  need(o.batch_size >= 1, "--batch-size", o.batch_size, "must be at least 1 pair");
  need(!o.levels.empty(), "--levels", "(empty)", "needs at least one level");
  for (int l : o.levels) need(l >= 1 && l <= 4, "--levels", l, "each level must be 1..4");
  for (int l : o.eval_levels) need(l >= 1 && l <= 4, "--eval-levels", l, "each level must be 1..4");
  need(o.n_train >= 1, "--n-train", o.n_train, "must be at least 1");
  need(o.lr > 0, "--lr", o.lr, "must be > 0");
  need(o.warmup_steps >= 0, "--warmup", o.warmup_steps, "must be >= 0");
  need(o.own_rounds >= 1, "--own-rounds", o.own_rounds, "must be at least 1");
  need(o.rpo_alpha >= 0, "--rpo-alpha", o.rpo_alpha, "must be >= 0 (0 = plain DPO)");
  need(o.weight_decay >= 0, "--weight-decay", o.weight_decay, "must be >= 0");
  need(o.max_grad_norm >= 0, "--max-grad-norm", o.max_grad_norm, "must be >= 0 (0 = off)");
  need(o.eval_every >= 0, "--eval-every", o.eval_every, "must be >= 0");
  need(o.eval_problems >= 0, "--eval-problems", o.eval_problems, "must be >= 0");
  need(o.max_new_tokens >= 1, "--max-new-tokens", o.max_new_tokens, "must be at least 1");
  need(o.ckpt_every >= 0, "--ckpt-every", o.ckpt_every, "must be >= 0");
  need(o.log_every >= 1, "--log-every", o.log_every, "must be at least 1");
}

DPOStepStats dpo_update(Transformer<float>& policy, Transformer<float>& reference, AdamW& adam,
                        const std::vector<Problem>& rows, const Tokenizer& tok, const DPOTrainOptions& opt,
                        int optimizer_step) {
  if (rows.size() < 2 || rows.size() % 2 != 0)
    throw_error("dpo_update: ", rows.size(), " rows are not chosen / rejected pairs (an even number >= 2)");
  Batch b = preference_batch(rows, tok, policy.config().max_seq_len);
  const std::size_t P0 = rows.size() / 2;
  if (opt.credit_steps) {  // the rejected rows' right results after the pair's first difference
    std::vector<std::vector<std::pair<std::size_t, std::size_t>>> spans(rows.size());
    for (std::size_t p = 0; p < P0; p++) spans[P0 + p] = spared_results(rows[p].answer, rows[P0 + p].answer);
    mask_answer_spans(b, rows, spans);
  }
  const int B = b.B, T = b.T, P = B / 2, V = policy.config().vocab_size;
  const long N = static_cast<long>(B) * T, half = static_cast<long>(P) * T;  // rows [P, 2P) start at half
  DPOStepStats s;
  s.tokens = N;
  Buffer<float> mask(N, Role::policy, Category::activations);  // (B, T) 1 on completion tokens (answer <eos>)
  for (long n = 0; n < N; n++) mask[n] = b.targets[n] >= 0 ? 1.0f : 0.0f;

  // 2. Reference log-probs (B, T): frozen, no gradient.
  Buffer<float> lp_ref(N, Role::reference, Category::activations);
  reference.forward(b.inputs.data(), nullptr, B, T);
  logprobs_forward(lp_ref.data(), reference.logits(), b.targets.data(), B * T, V);

  // 3. Policy log-probs (B, T) and the loss on the pairs (chosen = first half, rejected = second half).
  Buffer<float> lp(N, Role::policy, Category::activations), dlp(N, Role::policy, Category::activations);
  policy.zero_grad();
  // A diverged step (train/finite_check.h) stops below, before the optimizer touches the weights.
  const int step = optimizer_step + 1;  // 1-based, as in metrics.jsonl
  diverged_if_throws(step, posttrain_hint(), [&] {
    policy.forward(b.inputs.data(), nullptr, B, T);  // logits only (no LM loss, no MTP)
  });
  const float* logits = policy.logits();           // (B, T, V)
  logprobs_forward(lp.data(), logits, b.targets.data(), B * T, V);
  s.dpo = dpo_loss_forward(lp.data(), lp_ref.data(), mask.data(), lp.data() + half, lp_ref.data() + half,
                           mask.data() + half, P, T, opt.dpo);
  dpo_loss_backward(dlp.data(), dlp.data() + half, 1.0, lp.data(), lp_ref.data(), mask.data(), lp.data() + half,
                    lp_ref.data() + half, mask.data() + half, P, T, opt.dpo);
  // RPO's NLL term on the chosen rows [0, P): dNLL_w/dlp = -1/count on each of their completion tokens.
  double chosen_tokens = 0, chosen_lp = 0;
  for (long n = 0; n < half; n++)
    if (mask[n] != 0.0f) { chosen_tokens += 1; chosen_lp += lp[n]; }
  s.nll = chosen_tokens > 0 ? -chosen_lp / chosen_tokens : 0.0;
  if (opt.rpo_alpha > 0 && chosen_tokens > 0)
    for (long n = 0; n < half; n++)
      if (mask[n] != 0.0f) dlp[n] += static_cast<float>(-opt.rpo_alpha / chosen_tokens);
  double kl = 0, count = 0;
  for (long n = 0; n < N; n++) {
    if (mask[n] == 0.0f) continue;
    (n < half ? s.logps_chosen : s.logps_rejected) += static_cast<double>(lp[n]) / P;
    kl += kl_estimate(lp[n], lp_ref[n], KLEstimator::k3);
    count += 1;
  }
  s.kl = count > 0 ? kl / count : 0.0;

  // 4. dL/dlp (B, T) -> dL/dlogits (B, T, V) -> the policy; clip, AdamW (router biases frozen: moe_balance.h).
  Buffer<float> dlogits(static_cast<std::size_t>(N) * V, Role::policy, Category::activations);
  logprobs_backward(dlogits.data(), dlp.data(), logits, b.targets.data(), B * T, V);
  policy.backward_from_logits(dlogits.data());
  check_step_finite(step, s.dpo.loss + opt.rpo_alpha * s.nll, policy.layout(), policy.grads(), posttrain_hint());
  s.grad_norm = global_norm(policy.grads(), policy.num_params());
  if (opt.max_grad_norm > 0) clip_grad_norm(policy.grads(), policy.num_params(), s.grad_norm, opt.max_grad_norm);
  // Constant lr after a linear warmup: lr_at with min_lr == lr has nothing to decay to.
  s.lr = lr_at(optimizer_step, opt.lr, opt.lr, opt.warmup_steps, INT_MAX);
  adam.step(policy.params(), policy.grads(),
            AdamWSettings{static_cast<float>(s.lr), opt.beta1, opt.beta2, opt.adam_eps, opt.weight_decay});
  check_params_finite(step, policy.layout(), policy.params(), posttrain_hint());
  return s;
}

namespace {

json step_record(const DPOStepStats& s, std::size_t peak_bytes, double elapsed) {
  return json{{"step", s.step}, {"loss", s.dpo.loss}, {"rewards_chosen", s.dpo.rewards_chosen},
              {"rewards_rejected", s.dpo.rewards_rejected}, {"rewards_margin", s.dpo.rewards_margin},
              {"rewards_accuracy", s.dpo.rewards_accuracy}, {"nll", s.nll}, {"pairs", s.pairs}, {"drawn", s.drawn},
              {"logps_chosen", s.logps_chosen},
              {"logps_rejected", s.logps_rejected}, {"kl", s.kl}, {"grad_norm", s.grad_norm}, {"lr", s.lr},
              {"step_s", s.seconds}, {"tokens", s.tokens}, {"tokens_per_s", s.tokens_per_s},
              {"peak_bytes", peak_bytes}, {"elapsed_s", elapsed}};
}

}  // namespace

DPOResult run_dpo(const DPOTrainOptions& opt) {
  validate(opt);
  Timer total;
  Ledger::global().reset_peaks();  // the memory figures below are this run's
  PolicyAndReference models(opt.init_ckpt);
  const Config& cfg = models.config;
  const Tokenizer& tok = models.tokenizer;
  Transformer<float>& policy = models.policy;
  Transformer<float>& reference = models.reference;
  AdamW adam(policy.layout(), Role::policy);
  std::ofstream metrics = open_metrics(opt.out_dir);

  // 4 spare characters: a corrupted number may be a digit longer in up to three places (annotation, text, ####).
  const std::vector<Problem> pool =
      posttrain_pool(opt.levels, opt.n_train, opt.seed, cfg.model.max_seq_len, 4, opt.label, opt.quiet);
  const std::vector<int> order = seeded_permutation(static_cast<int>(pool.size()), opt.seed, 0xd90);
  const std::vector<int>& eval_levels = opt.eval_levels.empty() ? opt.levels : opt.eval_levels;
  const std::vector<std::vector<Problem>> heldout = heldout_per_level(cfg, eval_levels, opt.eval_problems);
  if (!opt.quiet)
    std::printf("[%s] from %s: %.2fM parameters, %zu problems (levels %s), %d pairs per step (%s corruption), "
                "%d steps, beta %g, loss %s%s, lr %g, rejected: %s\n",
                opt.label.c_str(), opt.init_ckpt.c_str(), policy.num_params() / 1e6, pool.size(),
                json(opt.levels).dump().c_str(), opt.batch_size, pair_corruption_name(opt.corruption), opt.steps,
                opt.dpo.beta, dpo_loss_type_name(opt.dpo.loss_type), opt.dpo.length_normalize ? " (length-normalised)" : "",
                opt.lr, opt.rejected == PairSource::own ? "the policy's own wrong greedy answers" : "corrupted copies");

  DPOResult result;
  auto evaluate = [&](int step) {
    return evaluate_levels(policy, tok, heldout, eval_levels, opt.max_new_tokens, step, metrics, opt.label, opt.quiet);
  };
  auto save = [&](const std::string& path, int step) {
    save_checkpoint(path, cfg, tok, policy, &adam, TrainState{step, adam.t()});
  };
  result.before = evaluate(0);
  const Rng pair_seeds(opt.seed, 0xd91);
  Progress progress(opt.label, opt.steps, 0, opt.quiet, opt.log_every);
  long next_problem = 0;  // own: the next position in `order`
  int adam_steps = 0;     // optimizer steps taken (the warmup counts these)
  for (int step = 0; step < opt.steps; step++) {
    Timer st;
    // 1. P problems of the pool and their rejected rows.
    std::vector<Problem> rows;
    int drawn = 0;
    if (opt.rejected == PairSource::own) {
      // A policy the last update broke fails here first: that is this step's divergence (finite_check.h).
      rows = diverged_if_throws(step + 1, posttrain_hint(), [&] {
        return own_pair_rows(policy, tok, pool, order, &next_problem, opt.batch_size, opt.own_rounds,
                             opt.max_new_tokens, &drawn);
      });
    } else {
      std::vector<Problem> chosen;
      for (int i : step_rows(order, step, opt.batch_size)) chosen.push_back(pool[i]);
      rows = preference_rows(chosen, opt.corruption, pair_seeds.at(step));
    }
    // 2-4. The update.
    // (own: a step whose rounds found no wrong answer has no pair to learn from and takes no optimizer step.)
    DPOStepStats s;
    if (!rows.empty()) s = dpo_update(policy, reference, adam, rows, tok, opt, adam_steps++);
    s.pairs = static_cast<int>(rows.size() / 2);
    s.drawn = opt.rejected == PairSource::own ? drawn : s.pairs;
    s.step = step + 1;
    s.seconds = st.seconds();
    s.tokens_per_s = s.seconds > 0 ? s.tokens / s.seconds : 0;
    result.steps.push_back(s);

    const std::size_t peak = Ledger::global().peak_total();
    json rec = step_record(s, peak, total.seconds());
    std::string extra = "chosen " + format_fixed(s.dpo.rewards_chosen, 3) + " | rejected " +
                        format_fixed(s.dpo.rewards_rejected, 3) + " | margin " + format_fixed(s.dpo.rewards_margin, 3) +
                        " | acc " + format_fixed(100 * s.dpo.rewards_accuracy, 1) + "% | nll " + format_fixed(s.nll, 3) +
                        " | kl " + format_fixed(s.kl, 4) + " | mem " + format_bytes(peak);
    if (opt.rejected == PairSource::own)  // pairs found / problems decoded
      extra += " | pairs " + std::to_string(s.pairs) + "/" + std::to_string(s.drawn);
    add_maxvio(rec, extra, policy);
    metrics << rec.dump() << "\n";
    metrics.flush();
    progress.step_done(s.step, s.dpo.loss, s.lr, s.grad_norm, s.tokens, extra);
    if (opt.eval_every > 0 && s.step % opt.eval_every == 0 && s.step < opt.steps) evaluate(s.step);
    if (opt.ckpt_every > 0 && s.step % opt.ckpt_every == 0) save(opt.out_dir + "/latest.safetensors", s.step);
  }
  result.final_ckpt = opt.out_dir + "/final.safetensors";
  save(result.final_ckpt, opt.steps);
  result.after = evaluate(opt.steps);
  result.seconds = total.seconds();
  result.peak_bytes = Ledger::global().peak_total();
  if (!opt.quiet)
    std::printf("[%s] done: %d steps in %.1f s; checkpoint %s; ledger peak %s\n", opt.label.c_str(), opt.steps,
                result.seconds, result.final_ckpt.c_str(), format_bytes(result.peak_bytes).c_str());
  return result;
}

}  // namespace tinyds
