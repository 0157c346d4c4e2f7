// tinyds/posttrain/reward_model_trainer.cpp — see reward_model_trainer.h.
//
// Shapes: P pairs, B = 2P rows (chosen then rejected), T columns, N = B*T.
#include "tinyds/posttrain/reward_model_trainer.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <numeric>
#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/core/rng.h"
#include "tinyds/core/timer.h"
#include "tinyds/posttrain/trainer_common.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/finite_check.h"
#include "tinyds/train/progress.h"
#include "tinyds/train/schedule.h"
#include "tinyds/train/trainer.h"

namespace tinyds {

using json = nlohmann::json;

void validate(const RMTrainOptions& o) {
  need(!o.init_ckpt.empty(), "--init", "(none)",
       "a checkpoint to initialise the reward model's trunk from is required, e.g. from `tinyds sft`");
  need(o.steps >= 0, "--steps", o.steps, "must be >= 0");
  need(o.batch_size >= 1, "--batch-size", o.batch_size, "must be at least 1 pair");
  need(!o.levels.empty(), "--levels", "(empty)", "needs at least one level");
  for (int l : o.levels) need(l >= 1 && l <= 4, "--levels", l, "each level must be 1..4");
  need(o.n_train >= 1, "--n-train", o.n_train, "must be at least 1");
  need(o.lr > 0, "--lr", o.lr, "must be > 0");
  need(o.warmup_steps >= 0, "--warmup", o.warmup_steps, "must be >= 0");
  need(o.weight_decay >= 0, "--weight-decay", o.weight_decay, "must be >= 0");
  need(o.max_grad_norm >= 0, "--max-grad-norm", o.max_grad_norm, "must be >= 0 (0 = off)");
  need(o.eval_every >= 0, "--eval-every", o.eval_every, "must be >= 0");
  need(o.eval_pairs >= 0, "--eval-pairs", o.eval_pairs, "must be >= 0");
  need(o.own_rounds >= 1, "--own-rounds", o.own_rounds, "must be at least 1");
  need(o.max_new_tokens >= 1, "--max-new-tokens", o.max_new_tokens, "must be at least 1");
  need(o.ckpt_every >= 0, "--ckpt-every", o.ckpt_every, "must be >= 0");
  need(o.log_every >= 1, "--log-every", o.log_every, "must be at least 1");
}

namespace {

// Critic forward on the pair rows; fills r (2P) with each row's value at its last completion position.
// Returns the batch (for the backward's positions). With step > 0 it is that training step's forward, and its
// failure (the MoE router refuses non-finite logits) is the step's divergence (train/finite_check.h).
Batch forward_pairs(Critic<float>& rm, const std::vector<Problem>& rows, const Tokenizer& tok, std::vector<int>& last,
                    std::vector<float>& r, int step = 0) {
  if (rows.size() < 2 || rows.size() % 2 != 0)
    throw_error("reward model: ", rows.size(), " rows are not chosen / rejected pairs (an even number >= 2)");
  Batch b = preference_batch(rows, tok, rm.trunk().config().max_seq_len);
  last = last_target_positions(b);
  auto forward = [&] { return rm.forward(b.inputs.data(), b.B, b.T); };
  const float* V = step > 0 ? diverged_if_throws(step, posttrain_hint(), forward) : forward();  // (B, T)
  r.assign(b.B, 0.0f);
  for (int i = 0; i < b.B; i++) {
    if (last[i] < 0) throw_error("reward model: row ", i, " has no completion token (its prompt fills the context)");
    r[i] = V[static_cast<long>(i) * b.T + last[i]];
  }
  return b;
}

}  // namespace

std::vector<double> score_pairs(Critic<float>& rm, const std::vector<Problem>& rows, const Tokenizer& tok) {
  std::vector<int> last;
  std::vector<float> r;
  forward_pairs(rm, rows, tok, last, r);
  return std::vector<double>(r.begin(), r.end());
}

RMStepStats reward_model_update(Critic<float>& rm, CriticAdamW& adam, const std::vector<Problem>& rows,
                                const Tokenizer& tok, const RMTrainOptions& opt, int optimizer_step) {
  RMStepStats s;
  std::vector<int> last;
  std::vector<float> r;  // (2P): r_w = r[0, P), r_l = r[P, 2P)
  rm.zero_grad();
  // A diverged step (train/finite_check.h) stops below, before the optimizer touches the weights.
  const int step = optimizer_step + 1;  // 1-based, as in metrics.jsonl
  const Batch b = forward_pairs(rm, rows, tok, last, r, step);
  const int B = b.B, T = b.T, P = B / 2;
  s.tokens = static_cast<long>(B) * T;
  s.rm = reward_model_loss_forward(r.data(), r.data() + P, P);
  for (int p = 0; p < P; p++) { s.reward_chosen += r[p] / P; s.reward_rejected += r[P + p] / P; }
  std::vector<float> dr(B);
  reward_model_loss_backward(dr.data(), dr.data() + P, 1.0, r.data(), r.data() + P, P);
  // forward was: r[i] = V[i, last[i]]  ->  dV[i, last[i]] = dr[i], 0 at every other position
  Buffer<float> dV(static_cast<std::size_t>(B) * T, Role::reward, Category::activations);
  for (int i = 0; i < B; i++) dV[static_cast<long>(i) * T + last[i]] = dr[i];
  rm.backward(dV.data());
  check_step_finite(step, s.rm.loss, critic_grads_named(rm, "", "reward_head"), posttrain_hint());
  s.grad_norm = critic_clip_grad_norm(rm, opt.max_grad_norm);
  // Constant lr after a linear warmup: lr_at with min_lr == lr has nothing to decay to.
  s.lr = lr_at(optimizer_step, opt.lr, opt.lr, opt.warmup_steps, INT_MAX);
  adam.step(AdamWSettings{static_cast<float>(s.lr), opt.beta1, opt.beta2, opt.adam_eps, opt.weight_decay});
  check_params_finite(step, critic_params_named(rm, "", "reward_head"), posttrain_hint());
  // No update_moe_bias: the trunk starts from a trained checkpoint and keeps its router biases (moe_balance.h).
  return s;
}

void save_reward_model(const std::string& stem, const Config& cfg, const Tokenizer& tok, Critic<float>& rm,
                       const AdamW* trunk_opt, int step) {
  save_checkpoint(stem + ".safetensors", cfg, tok, rm.trunk(), trunk_opt,
                  TrainState{step, trunk_opt ? trunk_opt->t() : 0});
  save_scalar_head(stem + ".reward_head.safetensors", rm, "reward_head");
}

LoadedRewardModel load_reward_model(const std::string& stem) {
  const LoadedCheckpoint ck = load_checkpoint(stem + ".safetensors");
  LoadedRewardModel out;
  out.config = ck.config;
  out.tokenizer = ck.tokenizer;
  out.model = std::make_unique<Critic<float>>(ck.config.model, Role::reward);
  load_params_into(ck, out.model->trunk());
  load_scalar_head(stem + ".reward_head.safetensors", *out.model, "reward_head");
  return out;
}

namespace {

json step_record(const RMStepStats& s, std::size_t peak_bytes, double elapsed) {
  return json{{"step", s.step}, {"loss", s.rm.loss}, {"accuracy", s.rm.accuracy}, {"margin", s.rm.mean_margin},
              {"reward_chosen", s.reward_chosen}, {"reward_rejected", s.reward_rejected},
              {"grad_norm", s.grad_norm}, {"lr", s.lr}, {"step_s", s.seconds}, {"tokens", s.tokens},
              {"tokens_per_s", s.tokens_per_s}, {"peak_bytes", peak_bytes}, {"elapsed_s", elapsed}};
}

}  // namespace

RMResult run_reward_model(const RMTrainOptions& opt) {
  validate(opt);
  Timer total;
  Ledger::global().reset_peaks();
  LoadedCheckpoint ck = load_checkpoint(opt.init_ckpt);
  const Config cfg = ck.config;
  const Tokenizer tok = ck.tokenizer;
  Critic<float> rm(cfg.model, Role::reward);  // trunk from the checkpoint, head zero (every reward starts at 0)
  load_params_into(ck, rm.trunk());
  std::unique_ptr<Transformer<float>> answerer;  // own: the --init model, frozen, whose wrong answers are rejected
  if (opt.rejected == PairSource::own) {
    answerer = std::make_unique<Transformer<float>>(cfg.model, Role::reference);
    load_params_into(ck, *answerer);
  }
  ck = LoadedCheckpoint{};
  CriticAdamW adam(rm, Role::reward);
  std::ofstream metrics = open_metrics(opt.out_dir);

  // 4 spare characters: a corrupted number may be a digit longer in up to three places (annotation, text, ####).
  const std::vector<Problem> pool =
      posttrain_pool(opt.levels, opt.n_train, opt.seed, cfg.model.max_seq_len, 4, opt.label, opt.quiet);
  const std::vector<int> order = seeded_permutation(static_cast<int>(pool.size()), opt.seed, 0x7e0);
  // Held-out pairs: the held-out problems of `tinyds sft` / `tinyds eval` (test split, the checkpoint's seed), each
  // with a corrupted copy.
  Config eval_cfg = cfg;
  eval_cfg.train.eval_problems = opt.eval_pairs;
  std::vector<std::vector<Problem>> heldout;  // per level of heldout_levels: 2n rows
  std::vector<int> heldout_levels;
  if (opt.eval_pairs > 0)
    for (int level : opt.levels) {
      std::vector<Problem> ps;
      for (Problem& p : heldout_problems(eval_cfg, level))
        if (fits_in_context(p, cfg.model.max_seq_len, 4)) ps.push_back(std::move(p));
      if (ps.empty()) throw_error("no held-out problem of level ", level, " fits max_seq_len = ", cfg.model.max_seq_len);
      if (opt.rejected == PairSource::corrupted) {
        heldout.push_back(preference_rows(ps, opt.corruption, opt.seed ^ 0x7e57ull));
        heldout_levels.push_back(level);
        continue;
      }
      // own: the held-out problems the model gets wrong, each decoded once (one round of all of them, in order)
      std::vector<int> in_order(ps.size());
      std::iota(in_order.begin(), in_order.end(), 0);
      long next = 0;
      std::vector<Problem> rows = own_pair_rows(*answerer, tok, ps, in_order, &next, static_cast<int>(ps.size()), 1,
                                                opt.max_new_tokens);
      if (rows.empty()) {
        if (!opt.quiet)
          std::printf("[%s] level %d: the model answers all %zu held-out problems right: no held-out pairs\n",
                      opt.label.c_str(), level, ps.size());
        continue;
      }
      heldout.push_back(std::move(rows));
      heldout_levels.push_back(level);
    }
  if (!opt.quiet)
    std::printf("[%s] reward model from %s: %.2fM parameters (trunk + head), %zu problems (levels %s), %d pairs per "
                "step (%s), %d steps, lr %g\n",
                opt.label.c_str(), opt.init_ckpt.c_str(), rm.num_params() / 1e6, pool.size(),
                json(opt.levels).dump().c_str(), opt.batch_size,
                opt.rejected == PairSource::own ? "rejected: the model's own wrong answers"
                                                : (std::string(pair_corruption_name(opt.corruption)) + " corruption").c_str(),
                opt.steps, opt.lr);

  RMResult result;
  // Held-out pair accuracy per level, in chunks of 32 pairs (one forward each); returns the accuracy over all.
  auto evaluate = [&](int step) {
    if (heldout.empty()) return -1.0;
    double correct_all = 0, n_all = 0;
    for (std::size_t l = 0; l < heldout.size(); l++) {
      const std::vector<Problem>& rows = heldout[l];
      const int P = static_cast<int>(rows.size() / 2);
      double correct = 0, margin = 0, correct_final = 0;
      int n_final = 0;
      for (int lo = 0; lo < P; lo += 32) {
        const int hi = std::min(P, lo + 32);
        std::vector<Problem> chunk(rows.begin() + lo, rows.begin() + hi);
        chunk.insert(chunk.end(), rows.begin() + P + lo, rows.begin() + P + hi);
        const std::vector<double> r = score_pairs(rm, chunk, tok);
        const int n = hi - lo;
        for (int p = 0; p < n; p++) {
          const bool right = r[p] > r[n + p];
          correct += right;
          margin += r[p] - r[n + p];
          if (only_final_line_differs(chunk[p], chunk[n + p])) { n_final++; correct_final += right; }
        }
      }
      const int n_step = P - n_final;
      const RMEval e{step, heldout_levels[l], P, correct / P, margin / P, n_final,
                     n_final > 0 ? correct_final / n_final : 0.0,
                     n_step > 0 ? (correct - correct_final) / n_step : 0.0};
      result.evals.push_back(e);
      correct_all += correct;
      n_all += P;
      metrics << json{{"step", step}, {"eval_level", e.level}, {"eval_pair_accuracy", e.accuracy},
                      {"eval_margin", e.margin}, {"eval_n", e.n}, {"eval_n_final", e.n_final},
                      {"eval_final_accuracy", e.final_accuracy}, {"eval_step_accuracy", e.step_accuracy}}.dump()
              << "\n";
      if (!opt.quiet && opt.rejected == PairSource::own)
        std::printf("[%s] eval step %d level %d: held-out pair accuracy %.0f/%d = %.1f%% (the model's own wrong "
                    "answers), mean margin %.3f\n",
                    opt.label.c_str(), step, e.level, correct, P, 100 * e.accuracy, e.margin);
      else if (!opt.quiet)
        std::printf("[%s] eval step %d level %d: held-out pair accuracy %.0f/%d = %.1f%% (the #### number changed "
                    "%.0f/%d, a step's result changed %.0f/%d), mean margin %.3f\n",
                    opt.label.c_str(), step, e.level, correct, P, 100 * e.accuracy, correct_final, n_final,
                    correct - correct_final, n_step, e.margin);
    }
    metrics.flush();
    return correct_all / n_all;
  };

  result.heldout_before = evaluate(0);
  const Rng pair_seeds(opt.seed, 0x7e1);
  Progress progress(opt.label, opt.steps, 0, opt.quiet, opt.log_every);
  long next_problem = 0;  // own: the next position in `order`
  int adam_steps = 0;     // optimizer steps taken (the warmup counts these)
  for (int step = 0; step < opt.steps; step++) {
    Timer st;
    std::vector<Problem> rows;
    if (opt.rejected == PairSource::own) {
      rows = own_pair_rows(*answerer, tok, pool, order, &next_problem, opt.batch_size, opt.own_rounds,
                           opt.max_new_tokens);
    } else {
      std::vector<Problem> chosen;
      for (int i : step_rows(order, step, opt.batch_size)) chosen.push_back(pool[i]);
      rows = preference_rows(chosen, opt.corruption, pair_seeds.at(step));
    }
    // (own: a step whose rounds found no wrong answer has no pair to learn from and takes no optimizer step.)
    RMStepStats s;
    if (!rows.empty()) s = reward_model_update(rm, adam, rows, tok, opt, adam_steps++);
    s.step = step + 1;
    s.seconds = st.seconds();
    s.tokens_per_s = s.seconds > 0 ? s.tokens / s.seconds : 0;
    result.steps.push_back(s);

    const std::size_t peak = Ledger::global().peak_total();
    json rec = step_record(s, peak, total.seconds());
    std::string extra = "acc " + format_fixed(100 * s.rm.accuracy, 1) + "% | margin " +
                        format_fixed(s.rm.mean_margin, 3) + " | chosen " + format_fixed(s.reward_chosen, 3) +
                        " | rejected " + format_fixed(s.reward_rejected, 3) + " | mem " + format_bytes(peak);
    add_maxvio(rec, extra, rm.trunk());
    metrics << rec.dump() << "\n";
    metrics.flush();
    progress.step_done(s.step, s.rm.loss, s.lr, s.grad_norm, s.tokens, extra);
    if (opt.eval_every > 0 && s.step % opt.eval_every == 0 && s.step < opt.steps) evaluate(s.step);
    if (opt.ckpt_every > 0 && s.step % opt.ckpt_every == 0)
      save_reward_model(opt.out_dir + "/latest", cfg, tok, rm, &adam.trunk(), s.step);
  }
  result.final_stem = opt.out_dir + "/final";
  save_reward_model(result.final_stem, cfg, tok, rm, &adam.trunk(), opt.steps);
  result.heldout_after = evaluate(opt.steps);
  result.seconds = total.seconds();
  result.peak_bytes = Ledger::global().peak_total();
  if (!opt.quiet)
    std::printf("[%s] done: %d steps in %.1f s; reward model %s.safetensors + %s.reward_head.safetensors; ledger "
                "peak %s\n",
                opt.label.c_str(), opt.steps, result.seconds, result.final_stem.c_str(), result.final_stem.c_str(),
                format_bytes(result.peak_bytes).c_str());
  return result;
}

}  // namespace tinyds
