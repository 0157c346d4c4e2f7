// tinyds/train/trainer.cpp — see trainer.h.
//
// Shapes: B = train.batch_size rows, T = the step's columns (at most train.seq_len).
#include "tinyds/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/core/timer.h"
#include "tinyds/data/generator.h"
#include "tinyds/data/gsm8k.h"
#include "tinyds/device/optimizer.h"
#include "tinyds/model/transformer.h"
#include "tinyds/train/batch_source.h"
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

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// The model's weights and AdamW's state: continued from the --resume checkpoint (already checked by
// check_resumable; returns its step and releases it), loaded from --init (fresh AdamW), or a seeded initialisation.
TrainState start_state(Transformer<float>& model, AdamW& adam, std::unique_ptr<LoadedCheckpoint>& resumed,
                       const TrainOptions& opt, uint64_t seed) {
  if (resumed) {
    const LoadedCheckpoint& ck = *resumed;
    load_params_into(ck, model);
    load_optimizer_into(ck, adam);
    const TrainState state = ck.state;
    resumed.reset();  // its copy of the weights and moments is no longer needed
    return state;
  }
  if (!opt.init_ckpt.empty()) load_params_into(load_checkpoint(opt.init_ckpt), model);
  else model.init_weights(seed);
  return TrainState{};
}

// The held-out sets: eval_problems per training level (test split), or the one --test-file (level 0).
struct HeldOut {
  std::vector<std::vector<Problem>> sets;
  std::vector<int> levels;
};

HeldOut heldout_sets(const Config& cfg, const TrainOptions& opt) {
  HeldOut h;
  if (!opt.test_file.empty()) { h.sets.push_back(read_gsm8k_jsonl(opt.test_file, opt.ascii_fold)); h.levels.push_back(0); }
  else for (int level : cfg.data.levels) { h.sets.push_back(heldout_problems(cfg, level)); h.levels.push_back(level); }
  return h;
}

// Greedy exact match on every held-out set: one metrics line per set and, unless quiet, a progress line with two
// examples. Returns the accuracy over all sets and the per-level results.
std::pair<double, std::vector<LevelAccuracy>> evaluate_all(Transformer<float>& model, const Tokenizer& tok,
                                                           const HeldOut& heldout, int step, MetricsLog& metrics,
                                                           const TrainOptions& opt) {
  double correct = 0, n = 0;
  std::vector<LevelAccuracy> per;
  for (std::size_t i = 0; i < heldout.sets.size(); i++) {
    EvalResult r = evaluate_exact_match(model, tok, heldout.sets[i], 96, 2);
    per.push_back({heldout.levels[i], r.n, r.accuracy, r.mean_completion_len, r.right,
                   r.share_with_lines(heldout.levels[i])});
    correct += r.correct; n += r.n;
    metrics.write(json{{"step", step}, {"eval_level", heldout.levels[i]}, {"eval_accuracy", r.accuracy},
                       {"eval_n", r.n}, {"well_formed", r.well_formed}, {"mean_completion_len", r.mean_completion_len}});
    if (!opt.quiet) {
      std::printf("[%s] eval step %d level %d: exact match %d/%d = %.1f%%  (well-formed %d)\n", opt.label.c_str(), step,
                  heldout.levels[i], r.correct, r.n, 100.0 * r.accuracy, r.well_formed);
      for (const std::string& e : r.examples) std::printf("    %s\n", e.c_str());
    }
  }
  return std::make_pair(n ? correct / n : 0.0, per);
}

// What one optimizer step measured, for its log line.
struct StepLog {
  int step;             // steps done, this one included
  double loss;          // next-token loss (comparable across dense and MoE/MTP models)
  double objective;     // what was differentiated: loss + MTP + balance loss
  float lr;
  double grad_norm;     // before clipping
  int tokens;           // B * T
  int pad_drills;       // -1: padding drills off
};

// One JSON line in metrics.jsonl and (every log_every steps) a progress line; MoE MaxVio into result.
void log_step(const StepLog& s, const Transformer<float>& model, const DataParallel<float>& dp, double elapsed,
              Progress& progress, MetricsLog& metrics, TrainResult& result) {
  json rec{{"step", s.step}, {"loss", s.loss}, {"objective", s.objective}, {"lr", s.lr}, {"grad_norm", s.grad_norm},
           {"tokens", s.tokens}, {"elapsed_s", elapsed}};
  if (s.pad_drills >= 0) rec["pad_drills"] = s.pad_drills;
  std::string extra;
  if (model.config().mtp_depth > 0) {
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
  progress.step_done(s.step, s.loss, s.lr, s.grad_norm, static_cast<long>(s.tokens), extra);
  rec["tokens_per_s"] = progress.tokens_per_s();
  metrics.write(rec);
}

// With the prompt masked (sft) only answer tokens are targets: the first one is the target of column
// |question| + 1 (<bos> q \n a), so a problem trains only if |question| + 2 <= seq_len.
void check_answer_tokens(const std::vector<Problem>& problems, int seq_len, bool mask_prompt) {
  if (mask_prompt && std::none_of(problems.begin(), problems.end(), [&](const Problem& p) {
        return static_cast<long>(p.question.size()) + 2 <= seq_len; }))
    throw_error("seq_len = ", seq_len, " leaves no answer token of any of the ", problems.size(),
                " training problems (every question fills the sequence), so the masked loss would train on zero "
                "tokens; raise --seq-len (and --max-seq-len)");
}

// The step's forward and backward; a forward that fails (the MoE router refuses non-finite logits) is reported as
// the divergence it is, at 1-based step `step`.
double forward_backward_checked(DataParallel<float>& dp, const Batch& batch, int step) {
  return diverged_if_throws(step, DivergenceHint{}, [&] {
    return dp.forward_backward(batch.inputs.data(), batch.targets.data(), batch.B, batch.T);
  });
}

// Step `step`'s finite checks (train/finite_check.h), from norms: an array is finite everywhere exactly when its
// norm is (squares of floats summed in double cannot overflow), so the norm stands in for reading every value (on
// cuda that would be a copy of the whole array to the host per step). The checks that read each tensor (through host
// copies on cuda) run only when a norm is not finite, to name the first non-finite tensor.
//
// Every value finite (the check above passed), yet the norm is not: on cuda the norm is stored as a float, which
// overflows past 3.4e38.
[[noreturn]] void norm_overflow(int step, const char* what, double norm) {
  throw_diverged(step, std::string("the ") + what + " norm is " + std::to_string(norm) + " (every " + what +
                           " is finite, but their norm overflows a float)");
}
// Before the update: the objective and the gradients (grad_norm, the norm the clip uses anyway).
void check_gradients(int step, double objective, double grad_norm, const Transformer<float>& model, const float* grads) {
  if (std::isfinite(objective) && std::isfinite(grad_norm)) return;
  check_step_finite(step, objective, model.layout(), grads);
  norm_overflow(step, "gradient", grad_norm);
}
// After the update: the parameters.
void check_parameters(int step, double param_norm, const Transformer<float>& model, const float* params) {
  if (std::isfinite(param_norm)) return;
  check_params_finite(step, model.layout(), params);
  norm_overflow(step, "parameter", param_norm);
}

void print_start(const Config& cfg, const TrainOptions& opt, const Transformer<float>& model, const BatchSource& data,
                 int start_step, int replicas) {
  const TrainConfig& tc = cfg.train;
  const int cut_off = count_cut_off(data.problems(), tc.seq_len);
  if (cut_off > 0)  // their "#### N" lines are lost first: say so
    std::printf("[%s] warning: %d of %zu training problems are longer than seq_len + 1 = %d tokens and will be cut "
                "off (their final answers unseen); raise --seq-len (and --max-seq-len)\n",
                opt.label.c_str(), cut_off, data.problems().size(), tc.seq_len + 1);
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  std::printf("[%s] %s preset: %.2fM parameters, %zu training problems (levels %s%s), B %d, T <= %d, %d steps from step %d, %d threads%s\n",
              opt.label.c_str(), cfg.name.c_str(), model.num_params() / 1e6, data.problems().size(),
              levels_text(cfg.data).c_str(),
              data.num_pad_drills() == 0 ? "" : (", padding filled from " + std::to_string(data.num_pad_drills()) + " calculator drills").c_str(),
              tc.batch_size, tc.seq_len, tc.steps, start_step, threads,
              replicas > 1 ? (" (" + std::to_string(replicas) + " data-parallel replicas)").c_str() : "");
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

  require_device(opt.device);
  Transformer<float> model(cfg.model, Role::policy, opt.device);
  AdamW adam(model.layout(), Role::policy, opt.device);
  TrainState state = start_state(model, adam, resumed, opt, tc.seed);
  // Data parallelism over threads (train/data_parallel.h): replica 0 is `model`; the others copy its weights now.
  // On cuda one model runs the whole batch: the kernels parallelise each op.
  if (opt.device == Device::cuda && opt.replicas > 1)
    std::printf("[%s] --replicas %d ignored on cuda: one model runs the whole batch (the kernels parallelise each "
                "op)\n", opt.label.c_str(), opt.replicas);
  const int replicas =
      opt.device == Device::cuda ? 1 : data_parallel_replicas(opt.replicas, tc.batch_size, cfg.model);
  DataParallel<float> dp(model, replicas);
  BatchSource data(cfg, training_problems(cfg, opt.train_file, opt.ascii_fold), tok, opt.mask_prompt);
  check_answer_tokens(data.problems(), tc.seq_len, opt.mask_prompt);
  const HeldOut heldout = heldout_sets(cfg, opt);
  // A resumed run first cuts the log back to its checkpoint's step (train/metrics_log.h).
  MetricsLog metrics(opt.out_dir + "/metrics.jsonl", opt.resume.empty() ? -1 : state.step);
  if (!opt.quiet) print_start(cfg, opt, model, data, state.step, dp.replicas());
  auto save = [&](const std::string& path) {
    metrics.sync();  // the log on disk reaches at least this checkpoint's step
    save_checkpoint(path, cfg, tok, model, &adam, TrainState{state.step, adam.t()});
  };

  TrainResult result;
  result.replicas = dp.replicas();
  Progress progress(opt.label, tc.steps, state.step, opt.quiet, tc.log_every);
  Timer total_timer;
  AdamWSettings as{tc.lr, tc.beta1, tc.beta2, tc.adam_eps, tc.weight_decay};
  while (state.step < tc.steps && !(opt.stop_after >= 0 && state.step >= opt.stop_after)) {
    const int step = state.step;
    // the step's batch (BatchSource: data order, padding drills)
    const StepBatch sb = data.batch(step);
    // zero_grad, forward, backward of each replica's rows, the gradients summed into model.grads(); a diverged step
    // stops the run before the optimizer touches the weights (train/finite_check.h)
    const double objective = forward_backward_checked(dp, sb.batch, step + 1);
    double norm = 0;
    {
      // The gradients and parameters live in the model's place: the norm and the clip run there (as kernels on
      // cuda, tinyds/device/optimizer.h), the norm read back to the host for the checks and the log.
      OnDevice scope(model.device());
      norm = dev::global_norm(model.grads(), model.num_params());
      check_gradients(step + 1, objective, norm, model, model.grads());
      // global grad-norm clip, then AdamW at the warmup + cosine learning rate
      if (tc.grad_clip > 0) dev::clip_grad_norm(model.grads(), model.num_params(), norm, tc.grad_clip);
      as.lr = static_cast<float>(lr_at(step, tc.lr, tc.min_lr, tc.warmup_steps, tc.steps));
      adam.step(model.params(), model.grads(), as);
      check_parameters(step + 1, dev::global_norm(model.params(), model.num_params()), model, model.params());
    }
    // auxiliary-loss-free balancing (DESIGN 4.3): router biases from this batch's loads, copied to every replica
    dp.update_moe_bias();
    state.step++;
    // log: a metrics.jsonl line every step, a progress line every log_every
    result.losses.push_back(dp.main_loss());
    log_step({state.step, dp.main_loss(), objective, as.lr, norm, sb.batch.B * sb.batch.T, sb.pad_drills}, model, dp,
             total_timer.seconds(), progress, metrics, result);
    // eval: held-out exact match every eval_every steps (the last step's is the final evaluation below)
    if (tc.eval_problems > 0 && tc.eval_every > 0 && state.step % tc.eval_every == 0 && state.step < tc.steps)
      result.evals.push_back({state.step, evaluate_all(model, tok, heldout, state.step, metrics, opt).first});
    // checkpoint: latest.safetensors every ckpt_every steps
    if (tc.ckpt_every > 0 && state.step % tc.ckpt_every == 0) save(opt.out_dir + "/latest.safetensors");
  }
  result.steps_done = state.step;
  result.seconds = total_timer.seconds();
  result.tokens_per_s = progress.median_tokens_per_s();
  if (state.step < tc.steps) {  // stopped early (stop_after): leave a resumable checkpoint
    result.final_ckpt = opt.out_dir + "/latest.safetensors";
    save(result.final_ckpt);
    return result;
  }
  result.final_ckpt = opt.out_dir + "/final.safetensors";
  save(result.final_ckpt);
  if (tc.eval_problems > 0) {
    auto [acc, per] = evaluate_all(model, tok, heldout, state.step, metrics, opt);
    result.final_accuracy = acc;
    result.final_eval = per;
    result.evals.push_back({state.step, acc});
  }
  if (!opt.quiet) std::printf("[%s] done: %d steps in %.1f s; checkpoint %s\n", opt.label.c_str(), state.step,
                              result.seconds, result.final_ckpt.c_str());
  return result;
}

}  // namespace tinyds
