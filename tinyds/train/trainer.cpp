// tinyds/train/trainer.cpp — see trainer.h.
#include "tinyds/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/core/rng.h"
#include "tinyds/core/timer.h"
#include "tinyds/data/batch.h"
#include "tinyds/data/batch_order.h"
#include "tinyds/data/drills.h"
#include "tinyds/data/pad_drills.h"
#include "tinyds/data/generator.h"
#include "tinyds/data/gsm8k.h"
#include "tinyds/model/transformer.h"
#include "tinyds/ops/adamw.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/data_parallel.h"
#include "tinyds/train/evaluate.h"
#include "tinyds/train/finite_check.h"
#include "tinyds/train/metrics_log.h"
#include "tinyds/train/optimizer.h"
#include "tinyds/train/progress.h"
#include "tinyds/train/schedule.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tinyds {

using json = nlohmann::json;

std::vector<Problem> heldout_problems(const Config& cfg, int level) {
  return generate_problems(level, cfg.train.eval_problems, cfg.train.seed ^ 0x7e57ull, Split::test);
}

std::vector<int> problems_per_level(const DataConfig& d) {
  const std::vector<int> w = d.level_weights.empty() ? std::vector<int>(d.levels.size(), 1) : d.level_weights;
  long long total = 0;
  for (int wi : w) total += wi;
  std::vector<int> counts;
  for (int wi : w) counts.push_back(static_cast<int>(std::max<long long>(1, static_cast<long long>(d.n_train) * wi / total)));
  return counts;
}

namespace {

// Word problems: generated for the configured levels, or read from --train-file.
std::vector<Problem> training_problems(const Config& cfg, const TrainOptions& opt) {
  if (!opt.train_file.empty()) return read_gsm8k_jsonl(opt.train_file, opt.ascii_fold);
  std::vector<Problem> all;
  const std::vector<int> counts = problems_per_level(cfg.data);
  for (std::size_t i = 0; i < cfg.data.levels.size(); i++) {
    const int level = cfg.data.levels[i];
    std::vector<Problem> p = generate_problems(level, counts[i], cfg.train.seed + 7919ull * level, Split::train);
    all.insert(all.end(), p.begin(), p.end());
  }
  return all;
}

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

TrainResult run_training(const Config& cfg, const TrainOptions& opt) {
  cfg.validate();
  const TrainConfig& tc = cfg.train;
  // A resumed run is checked (its values' domains, its step) before anything is allocated for it.
  std::unique_ptr<LoadedCheckpoint> resumed;
  if (!opt.resume.empty()) {
    resumed = std::make_unique<LoadedCheckpoint>(load_checkpoint(opt.resume));
    check_resumable(*resumed);
  }
  const Tokenizer tok = resumed ? resumed->tokenizer : Tokenizer();  // a checkpoint keeps its own vocabulary
  if (tok.vocab_size() > cfg.model.vocab_size)
    throw_error("model.vocab_size = ", cfg.model.vocab_size, " is smaller than the tokenizer's ", tok.vocab_size(), " tokens");
  std::filesystem::create_directories(opt.out_dir);

  Transformer<float> model(cfg.model, Role::policy);
  AdamW adam(model.layout(), Role::policy);
  TrainState state;
  if (resumed) {
    const LoadedCheckpoint& ck = *resumed;
    load_params_into(ck, model);
    std::copy(ck.adam_m.begin(), ck.adam_m.end(), adam.m());
    std::copy(ck.adam_v.begin(), ck.adam_v.end(), adam.v());
    adam.set_t(ck.state.adam_t);
    state = ck.state;
    resumed.reset();  // its copy of the weights and moments is no longer needed
  } else if (!opt.init_ckpt.empty()) {
    load_params_into(load_checkpoint(opt.init_ckpt), model);
  } else {
    model.init_weights(tc.seed);
  }

  // Data parallelism over threads (train/data_parallel.h): replica 0 is `model`; the others copy its weights now.
  DataParallel<float> dp(model, data_parallel_replicas(opt.replicas, tc.batch_size, cfg.model));

  std::vector<Problem> problems = training_problems(cfg, opt);
  if (problems.empty()) throw_error("no training problems");
  // A problem longer than seq_len + 1 tokens loses the tail of its answer (the "#### N" line first): say so.
  int too_long = 0;
  for (const Problem& p : problems)
    too_long += static_cast<int>(p.question.size() + p.answer.size()) + 3 > tc.seq_len + 1;  // <bos> q \n a <eos>
  if (too_long > 0 && !opt.quiet)
    std::printf("[%s] warning: %d of %zu training problems are longer than seq_len + 1 = %d tokens and will be cut "
                "off (their final answers unseen); raise --seq-len (and --max-seq-len)\n",
                opt.label.c_str(), too_long, problems.size(), tc.seq_len + 1);
  // With the prompt masked (sft) only answer tokens are targets: the first one is the target of column
  // |question| + 1 (<bos> q \n a), so a problem trains only if |question| + 2 <= seq_len.
  if (opt.mask_prompt && std::none_of(problems.begin(), problems.end(), [&](const Problem& p) {
        return static_cast<long>(p.question.size()) + 2 <= tc.seq_len; }))
    throw_error("seq_len = ", tc.seq_len, " leaves no answer token of any of the ", problems.size(),
                " training problems (every question fills the sequence), so the masked loss would train on zero "
                "tokens; raise --seq-len (and --max-seq-len)");
  std::vector<std::vector<Problem>> heldout;  // per level (or the one test file)
  std::vector<int> heldout_levels;
  if (!opt.test_file.empty()) { heldout.push_back(read_gsm8k_jsonl(opt.test_file, opt.ascii_fold)); heldout_levels.push_back(0); }
  else for (int level : cfg.data.levels) { heldout.push_back(heldout_problems(cfg, level)); heldout_levels.push_back(level); }

  // Curriculum: a fraction drill_frac of the steps train on a batch of bare drills (data/drills.h) instead of word
  // problems. Whole batches of one kind keep the short drills from being padded to word-problem length. Which
  // steps are drill steps depends only on (seed, step), so --resume stays exact.
  std::vector<Problem> drills = cfg.data.drill_frac > 0 ? make_drills(problems, static_cast<int>(problems.size())) : std::vector<Problem>{};
  const Rng drill_coin(tc.seed, 0xd7111);
  std::vector<int> lengths;  // characters = tokens (character-level tokenizer), for length grouping
  for (const Problem& p : problems) lengths.push_back(static_cast<int>(p.question.size() + p.answer.size()));
  BatchOrder order(static_cast<int>(problems.size()), tc.seed);
  BatchOrder drill_order(static_cast<int>(std::max<std::size_t>(1, drills.size())), tc.seed + 1);
  // Padding drills (data/pad_drills.h): candidates for step s are positions s*K .. s*K+K-1 of their own seeded
  // order, K enough for every row of the batch to be filled with the shortest drills.
  const std::vector<PadDrill> pad_drills = cfg.data.pad_drills ? annotation_drills(problems, tok) : std::vector<PadDrill>{};
  BatchOrder pad_order(static_cast<int>(std::max<std::size_t>(1, pad_drills.size())), tc.seed + 2);
  const int pad_candidates = tc.batch_size * (tc.seq_len / 10 + 1);
  // A resumed run first cuts the log back to its checkpoint's step (train/metrics_log.h).
  MetricsLog metrics(opt.out_dir + "/metrics.jsonl", opt.resume.empty() ? -1 : state.step);
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  if (!opt.quiet)
    std::printf("[%s] %s preset: %.2fM parameters, %zu training problems (levels %s, %.0f%% of steps on drills%s%s), B %d, T <= %d, %d steps from step %d, %d threads%s\n",
                opt.label.c_str(), cfg.name.c_str(), model.num_params() / 1e6, problems.size(),
                levels_text(cfg.data).c_str(), 100.0 * cfg.data.drill_frac,
                pad_drills.empty() ? "" : (", padding filled from " + std::to_string(pad_drills.size()) + " calculator drills").c_str(),
                cfg.data.length_group > 1 ? (", rows grouped by length over " + std::to_string(cfg.data.length_group) + " steps").c_str() : "",
                tc.batch_size, tc.seq_len, tc.steps, state.step, threads,
                dp.replicas() > 1 ? (" (" + std::to_string(dp.replicas()) + " data-parallel replicas)").c_str() : "");

  auto evaluate_all = [&](int step) {
    double correct = 0, n = 0;
    std::vector<LevelAccuracy> per;
    for (std::size_t i = 0; i < heldout.size(); i++) {
      EvalResult r = evaluate_exact_match(model, tok, heldout[i], 96, 2);
      per.push_back({heldout_levels[i], r.n, r.accuracy, r.mean_completion_len});
      correct += r.correct; n += r.n;
      metrics.write(json{{"step", step}, {"eval_level", heldout_levels[i]}, {"eval_accuracy", r.accuracy},
                         {"eval_n", r.n}, {"well_formed", r.well_formed}, {"mean_completion_len", r.mean_completion_len}});
      if (!opt.quiet) {
        std::printf("[%s] eval step %d level %d: exact match %d/%d = %.1f%%  (well-formed %d)\n", opt.label.c_str(), step,
                    heldout_levels[i], r.correct, r.n, 100.0 * r.accuracy, r.well_formed);
        for (const std::string& e : r.examples) std::printf("    %s\n", e.c_str());
      }
    }
    return std::make_pair(n ? correct / n : 0.0, per);
  };
  auto save = [&](const std::string& path) {
    TrainState s{state.step, adam.t()};
    metrics.sync();  // the log on disk reaches at least this checkpoint's step
    save_checkpoint(path, cfg, tok, model, &adam, s);
  };

  TrainResult result;
  result.replicas = dp.replicas();
  Progress progress(opt.label, tc.steps, state.step, opt.quiet, tc.log_every);
  Timer total_timer;
  AdamWSettings as{tc.lr, tc.beta1, tc.beta2, tc.adam_eps, tc.weight_decay};
  while (state.step < tc.steps) {
    if (opt.stop_after >= 0 && state.step >= opt.stop_after) break;
    const int step = state.step;
    const bool drill_step = !drills.empty() && drill_coin.uniform_at(step) < cfg.data.drill_frac;
    const std::vector<Problem>& pool = drill_step ? drills : problems;
    std::vector<int> rows = drill_step ? drill_order.rows(step, tc.batch_size)
                                       : order.grouped_rows(step, tc.batch_size, cfg.data.length_group, lengths);
    const int drill_cols = pad_drills.empty() ? 0 : cfg.data.drill_columns;
    Batch batch = make_batch(pool, rows, tok, std::min(tc.seq_len, batch_columns(pool, rows, tc.seq_len) + drill_cols),
                             opt.mask_prompt);
    const int n_pad_drills = pad_drills.empty() ? 0
        : fill_padding_with_drills(batch, pad_drills, pad_order.rows(step, pad_candidates));

    // zero_grad, forward, backward (of each replica's rows, then the gradients summed into model.grads())
    // A diverged step stops the run before the optimizer touches the weights (train/finite_check.h); a forward
    // that fails (the MoE router refuses non-finite logits) is reported as the same divergence.
    double objective = 0;
    try {
      objective = dp.forward_backward(batch.inputs.data(), batch.targets.data(), batch.B, batch.T);
    } catch (const Error& e) {
      throw_diverged(step + 1, std::string("the forward or backward pass failed: ") + e.what());
    }
    check_step_finite(step + 1, objective, model.layout(), model.grads());
    double norm = global_norm(model.grads(), model.num_params());
    if (tc.grad_clip > 0) clip_grad_norm(model.grads(), model.num_params(), norm, tc.grad_clip);
    as.lr = static_cast<float>(lr_at(step, tc.lr, tc.min_lr, tc.warmup_steps, tc.steps));
    adam.step(model.params(), model.grads(), as);
    check_params_finite(step + 1, model.layout(), model.params());
    // Auxiliary-loss-free balancing (DESIGN 4.3): after the optimizer step, from this batch's expert loads.
    dp.update_moe_bias();  // and copies the updated weights and biases to the other replicas
    state.step++;
    const double loss = dp.main_loss();  // the next-token loss: comparable across dense and MoE/MTP models
    result.losses.push_back(loss);

    json rec{{"step", state.step}, {"loss", loss}, {"objective", objective}, {"lr", as.lr}, {"grad_norm", norm},
             {"tokens", batch.B * batch.T}, {"elapsed_s", total_timer.seconds()}};
    if (!pad_drills.empty()) rec["pad_drills"] = n_pad_drills;
    std::string extra;
    if (cfg.model.mtp_depth > 0) {
      rec["mtp_loss"] = dp.mtp_loss();
      extra += "mtp " + fixed(dp.mtp_loss(), 3);
    }
    if (model.num_moe_layers() > 0) {
      const std::vector<double> maxvio = dp.moe_maxvio();
      rec["balance_loss"] = dp.balance_loss();
      rec["maxvio"] = maxvio;              // per MoE layer: max load / mean load - 1
      rec["expert_load"] = dp.moe_load();  // per MoE layer: (token, slot) pairs per expert
      result.final_maxvio = maxvio;
      extra += std::string(extra.empty() ? "" : " | ") + "maxvio " + fixed(*std::max_element(maxvio.begin(), maxvio.end()), 2);
    }
    progress.step_done(state.step, loss, as.lr, norm, static_cast<long>(batch.B) * batch.T, extra);
    rec["tokens_per_s"] = progress.tokens_per_s();
    metrics.write(rec);
    if (tc.eval_problems > 0 && tc.eval_every > 0 && state.step % tc.eval_every == 0 && state.step < tc.steps)
      result.evals.push_back({state.step, evaluate_all(state.step).first});
    if (tc.ckpt_every > 0 && state.step % tc.ckpt_every == 0) save(opt.out_dir + "/latest.safetensors");
  }
  result.steps_done = state.step;
  result.seconds = total_timer.seconds();
  result.tokens_per_s = progress.median_tokens_per_s();
  if (state.step < tc.steps) {  // stopped early (stop_after): leave a resumable checkpoint
    save(opt.out_dir + "/latest.safetensors");
    result.final_ckpt = opt.out_dir + "/latest.safetensors";
    return result;
  }
  result.final_ckpt = opt.out_dir + "/final.safetensors";
  save(result.final_ckpt);
  if (tc.eval_problems > 0) {
    auto [acc, per] = evaluate_all(state.step);
    result.final_accuracy = acc;
    result.final_eval = per;
    result.evals.push_back({state.step, acc});
  }
  if (!opt.quiet) std::printf("[%s] done: %d steps in %.1f s; checkpoint %s\n", opt.label.c_str(), state.step,
                              result.seconds, result.final_ckpt.c_str());
  return result;
}

}  // namespace tinyds
