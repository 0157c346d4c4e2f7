// tinyds/cli/cmd_demo.cpp — `tinyds demo` (what `make demo` runs): R1-Zero in miniature.
//
//   stage 1  SFT from scratch: the DeepSeek-style `small` model learns levels 1, 2 and 4 (one-, two- and four-step
//            problems, 4:2:1) with the loss on the answers (train/trainer.h)
//   stage 2  GRPO from the stage-1 checkpoint on levels 2-3, rewarded only by rules (accuracy, credited only when
//            every calculator line before the answer is right, + format: posttrain/reward.h), with a
//            frozen copy of the SFT model as the KL reference and dynamic sampling (posttrain/grpo_trainer.h).
//            Level 3 (three steps) was never in the supervised data: whatever the model gains there, it found by
//            sampling and reward.
//   report   held-out greedy exact match per level before (= the SFT checkpoint) and after GRPO, pass@8 of
//            sampled completions before and after (train/pass_at_k.h: RL at best turns pass@k into pass@1), mean
//            completion length, the reward curve, MaxVio, times, where the metrics (pass@k in <out>/pass_at_k.jsonl)
//            and checkpoints are, and <out>/curves.png drawn by tinyds/cli/plot_curves.py (python3-matplotlib).
// After the first SFT steps (~40 s on the 2-core AVX-512 machine) it prints the time it expects to take: SFT is
// run as a first slice (stop_after) and resumed exactly from its checkpoint (train/trainer.h).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/cli/config_options.h"
#include "tinyds/core/error.h"
#include "tinyds/core/ledger.h"
#include "tinyds/core/timer.h"
#include "tinyds/posttrain/grpo_trainer.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/metrics_log.h"
#include "tinyds/train/paired_change.h"
#include "tinyds/train/pass_at_k.h"
#include "tinyds/train/progress.h"
#include "tinyds/train/trainer.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tinyds {

using json = nlohmann::json;

namespace {

std::string architecture(const ModelConfig& m) {
  std::string arch = std::string(attention_kind_name(m.attention)) + " attention";
  if (m.n_routed_experts > 0)
    arch += ", MoE " + std::to_string(m.n_routed_experts) + " routed experts top-" + std::to_string(m.n_activated_experts) +
            " + " + std::to_string(m.n_shared_experts) + " shared (balance " + m.balance + ")";
  if (m.mtp_depth > 0) arch += ", MTP depth " + std::to_string(m.mtp_depth);
  return arch;
}

// Mean of a field over steps [lo, hi) of the GRPO run.
template <typename F>
double mean_over(const std::vector<GRPOStepStats>& s, int lo, int hi, F field) {
  double sum = 0;
  for (int i = lo; i < hi; i++) sum += field(s[i]);
  return hi > lo ? sum / (hi - lo) : 0.0;
}

// pass@K at `temperature` per level of a checkpoint: K samples of each of the first n held-out problems.
std::vector<SampledEvalResult> pass_at_k_per_level(const std::string& ckpt, const Config& cfg,
                                                   const std::vector<int>& levels, int n, int K, float temperature,
                                                   int max_new_tokens) {
  std::vector<SampledEvalResult> out;
  if (n <= 0 || K <= 0) return out;
  const LoadedCheckpoint ck = load_checkpoint(ckpt);
  Transformer<float> model(ck.config.model);
  load_params_into(ck, model);
  Config held = cfg;
  held.train.eval_problems = n;  // the first n of the held-out problems the greedy evaluation uses
  for (int level : levels)
    out.push_back(evaluate_pass_at_k(model, ck.tokenizer, heldout_problems(held, level), K, temperature,
                                     max_new_tokens, cfg.train.seed));
  return out;
}

// <out>/pass_at_k.jsonl: one record per (checkpoint, level) of the two pass@k evaluations, for notebook 7 and
// anyone re-reading a run: "step" is the GRPO step of the checkpoint (0 = the SFT checkpoint), pass_at[k-1] is
// pass@k (train/pass_at_k.h).
void write_pass_at_k(const std::string& path, const std::vector<int>& levels,
                     const std::vector<SampledEvalResult>& pk_sft, const std::vector<SampledEvalResult>& pk_rl,
                     int grpo_steps) {
  if (pk_sft.empty()) return;
  MetricsLog log(path, -1);
  auto write = [&](const char* checkpoint, int step, const std::vector<SampledEvalResult>& results) {
    for (std::size_t i = 0; i < results.size() && i < levels.size(); i++) {
      const SampledEvalResult& s = results[i];
      log.write({{"step", step}, {"checkpoint", checkpoint}, {"level", levels[i]}, {"problems", s.problems},
                 {"samples", s.samples}, {"temperature", s.temperature}, {"pass_at", s.pass_at},
                 {"entropy", s.entropy}, {"degenerate_share", s.degenerate_share},
                 {"mean_completion_len", s.mean_completion_len}});
    }
  };
  write("sft", 0, pk_sft);
  write("grpo", grpo_steps, pk_rl);
}

void print_table(const GRPOResult& g, const std::vector<int>& grpo_levels, const std::vector<SampledEvalResult>& pk_sft,
                 const std::vector<SampledEvalResult>& pk_rl) {
  std::printf("  held-out exact match (greedy decoding, test split)");
  const bool pk = !pk_sft.empty() && pk_sft.size() == pk_rl.size() && pk_sft.size() == g.before.size();
  if (pk)
    std::printf("; pass@%d: %d samples per problem at temperature %g, first %d problems", pk_sft[0].samples,
                pk_sft[0].samples, pk_sft[0].temperature, pk_sft[0].problems);
  std::printf(":\n    %-6s %9s %11s %16s", "level", "after SFT", "after GRPO", "change (+-se)");
  if (pk) std::printf(" %9s %9s", ("pass@" + std::to_string(pk_sft[0].samples) + " SFT").c_str(), "GRPO");
  std::printf("   %-16s %s\n", "L-line answers", "mean completion tokens");
  for (std::size_t i = 0; i < g.before.size() && i < g.after.size(); i++) {
    const LevelAccuracy &b = g.before[i], &a = g.after[i];
    // The paired standard error of the change (the same problems before and after: train/paired_change.h).
    const std::optional<PairedChange> c = paired_change_if_comparable(b.right, a.right);
    const double se = c ? c->se : 0;
    std::printf("    %-6d %8.1f%% %10.1f%% %+8.1f (+-%.1f)", b.level, 100 * b.accuracy, 100 * a.accuracy,
                100 * (a.accuracy - b.accuracy), 100 * se);
    if (pk) std::printf(" %9.1f%% %8.1f%%", 100 * pk_sft[i].pass_at.back(), 100 * pk_rl[i].pass_at.back());
    std::printf("   %5.1f -> %5.1f%%   %.1f -> %.1f   (%d problems)\n", 100 * b.level_lines, 100 * a.level_lines,
                b.mean_len, a.mean_len, b.n);
  }
  std::printf("    (L-line answers: the share written in as many calculator lines as the level has steps)\n");
  const int n = static_cast<int>(g.steps.size());
  if (n == 0) return;
  const int k = std::max(1, std::min(10, n / 3));
  auto reward = [](const GRPOStepStats& s) { return s.reward_mean; };
  auto acc = [](const GRPOStepStats& s) { return s.accuracy; };
  auto len = [](const GRPOStepStats& s) { return s.completion_len; };
  std::printf("  GRPO samples (levels %s, temperature 1): first %d steps -> last %d steps\n", json(grpo_levels).dump().c_str(),
              k, k);
  std::printf("    reward (accuracy + format, max 2) %.3f -> %.3f   accuracy %.1f%% -> %.1f%%   length %.1f -> %.1f\n",
              mean_over(g.steps, 0, k, reward), mean_over(g.steps, n - k, n, reward), 100 * mean_over(g.steps, 0, k, acc),
              100 * mean_over(g.steps, n - k, n, acc), mean_over(g.steps, 0, k, len), mean_over(g.steps, n - k, n, len));
}

// The whole demo's expected time, from the first SFT slice: the SFT stage at the slice's pace (the slice also pays
// the start-up, so this errs high), then GRPO with its evaluations and the two pass@k evaluations at the ratio
// measured on the quiet 2-core AVX-512 machine with the demo's defaults: 3m19s after an 11m42s SFT stage, ~0.28 of
// SFT, and 17% more with the SFT term in the GRPO stage, ~0.33 (notebooks/EXPERIMENTS.md, "The demo end to end").
// A rough figure for a slower or busier machine.
void print_time_estimate(double slice_seconds, int slice_steps, int steps) {
  const double sft = slice_seconds / slice_steps * steps;
  const double rest = 0.33 * sft;
  std::printf("\n[demo] %d SFT steps took %s: expecting about %s for the whole demo (SFT %s, GRPO and evaluations "
              "~%s)\n\n", slice_steps, format_duration(slice_seconds).c_str(), format_duration(sft + rest).c_str(),
              format_duration(sft).c_str(), format_duration(rest).c_str());
  std::fflush(stdout);
}

// Draws <out>/curves.png with tinyds/cli/plot_curves.py and Debian's python3-matplotlib; returns the path, or
// why there is none (the demo goes on either way).
std::string plot_curves(const std::string& out) {
  const std::string python = "/usr/bin/python3";
  const std::string script = std::string(TINYDS_SOURCE_DIR) + "/tinyds/cli/plot_curves.py";
  const std::string png = out + "/curves.png";
  if (access(python.c_str(), X_OK) != 0) return "(not drawn: " + python + " not found; install python3-matplotlib)";
  if (access(script.c_str(), R_OK) != 0) return "(not drawn: " + script + " not found)";
  std::fflush(stdout);
  const std::string cmd = python + " '" + script + "' '" + out + "' '" + png + "' > '" + out + "/curves.log' 2>&1";
  const int status = std::system(cmd.c_str());
  if (status != 0) return "(not drawn: plot_curves.py failed, see " + out + "/curves.log; python3-matplotlib missing?)";
  return png;
}

}  // namespace

int cmd_demo(int argc, char** argv) {
  Timer total;
  Config cfg = Config::preset(scan_preset(argc, argv, "small"));
  // Stage 1's curriculum: levels 1, 2 and 4, four level-1 problems for every two level-2 and one level-4 one. Level
  // 3 is left out so that stage 2 has something to find; with levels 1-2 alone the SFT model answers level 3 in two
  // lines and GRPO has no right three-line sample to reinforce, with level 4 in the mix it writes three- and
  // four-line answers and RL can pick the right length (notebooks/EXPERIMENTS.md, "GRPO learning rate and level 3").
  // The level-1 share keeps the one-step arithmetic every later step is made of (ibid., "Level weights").
  cfg.data.levels = {1, 2, 4};
  cfg.data.level_weights = {4, 2, 1};
  // No extra drill columns: a level-4 row is in ~70% of the batches, so the shorter rows already end in long
  // padding that the drills fill; the 32 columns cost 15% of every step, and the default seed learned as well
  // without them (8000 steps: 99.0 / 95.0% on levels 1 / 2 against 100.0 / 96.0%; ibid., "Drill columns").
  cfg.data.drill_columns = 0;
  // 7500 steps: with router-bias speed 1e-4 and the 4:2:1 mix, 8000 steps reached 97-100% / 82-98% on levels 1 / 2
  // on four seeds; 7500 leave the GRPO stage its ~3 minutes within the demo's 15 on the quiet 2-core AVX-512
  // machine (SFT 11m42s, the whole demo 15m01s: "The demo end to end").
  cfg.train.steps = 7500;
  cfg.train.log_every = 200;
  cfg.train.eval_every = 0;     // stage 2 evaluates the SFT checkpoint on every level before it starts,
  cfg.train.eval_problems = 0;  // so stage 1 does not evaluate at all
  Args a("tinyds demo",
         "R1-Zero in miniature, from scratch on the CPU: (1) SFT of the DeepSeek-style `small` model on generated\n"
         "level 1, 2 and 4 arithmetic word problems, (2) GRPO on levels 2-3 with rule-based rewards only (accuracy +\n"
         "format), (3) held-out exact match per level before and after GRPO. Level 3 is never in the SFT data.\n"
         "The model options below are stage 1's (--steps is the SFT steps).");
  ConfigOptions co;
  co.add_to(a, cfg);
  a.remove("--eval-every");  // stage 1 does not evaluate (above); --eval-problems below is the held-out evaluation's
  a.remove("--eval-problems");
  std::string out = "runs/demo", sft_ckpt;
  int replicas = 0;
  GRPOTrainOptions g = grpo_recipe();  // stage 2: the recipe of posttrain/grpo_trainer.h, evaluated as below
  g.eval_every = 0;
  g.eval_problems = 200;
  g.label = "grpo";
  // pass@8 on 50 problems per level: 400 sampled completions per level, about two greedy evaluations' worth.
  int pass_k = 8, pass_problems = 50;
  a.add("--out", out, "output folder: <out>/sft and <out>/grpo get metrics.jsonl and checkpoints");
  a.add("--replicas", replicas, "SFT: data-parallel model replicas, one per thread (0 = one per OpenMP thread)");
  a.add("--sft-ckpt", sft_ckpt, "skip stage 1 and start GRPO from this checkpoint (e.g. runs/demo/sft/final.safetensors)");
  a.add("--grpo-steps", g.steps, "GRPO steps (each: prompts x generations sampled completions, one optimizer step)");
  a.add("--prompts-per-step", g.prompts_per_step, "GRPO: distinct prompts per step");
  a.add("--num-generations", g.grpo.num_generations, "GRPO: completions per prompt (the group)");
  a.add("--grpo-lr", g.lr, "GRPO: AdamW learning rate (constant)");
  a.add("--sample-rounds", g.sample_rounds, "GRPO: dynamic sampling, most batches of prompts drawn per step to find "
                                            "groups partly right and partly wrong (1 = off)");
  a.add("--beta", g.grpo.beta, "GRPO: weight of the k3 KL penalty to the SFT model");
  a.add("--check-steps", g.reward_rules.check_steps, "GRPO: reward a right answer only when every calculator "
                                                   "annotation <<a+b=c>> before it holds");
  a.add("--ptx-coef", g.ptx_coef, "GRPO: weight gamma of the SFT loss on the checkpoint's own SFT data added to each "
                                    "step (InstructGPT's PPO-ptx; 0 = off)");
  a.add("--credit-steps", g.credit_steps, "GRPO: no gradient on the results of right calculator lines in a completion "
                                          "below its group's mean (nor of wrong lines in one above it)");
  a.add("--grpo-levels", g.levels, "GRPO: levels of the training prompts");
  a.add("--prompt-distractors", g.prompt_distractors, "GRPO: share of the training prompts given an irrelevant "
        "sentence before the question asked (data/distractors.h); held-out problems are never changed");
  a.add("--eval-levels", g.eval_levels, "held-out levels evaluated before and after GRPO");
  a.add("--eval-problems", g.eval_problems, "held-out problems per level");
  a.add("--pass-k", pass_k, "samples per problem of the pass@k evaluation before and after GRPO (0 = skip)");
  a.add("--pass-problems", pass_problems, "held-out problems per level of the pass@k evaluation (at most --eval-problems)");
  if (!a.parse(argc, argv)) return 0;
  pass_problems = std::min(pass_problems, g.eval_problems);  // a subset of the greedy evaluation's problems
  if (a.given("--levels") && !a.given("--level-weights")) cfg.data.level_weights.clear();  // other levels: equal shares
  co.finish(cfg);
  g.seed = cfg.train.seed;
  g.init_ckpt = sft_ckpt.empty() ? out + "/sft/final.safetensors" : sft_ckpt;
  validate(g);  // a bad GRPO option is reported now, not after the SFT stage

  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  std::printf("tinyds demo: R1-Zero in miniature on %d CPU threads.\n"
              "  model    %.2fM-parameter DeepSeek-style transformer (%s preset: %d layers, C %d, %s)\n"
              "  stage 1  SFT from scratch on levels %s, %d steps of %d problems\n"
              "  stage 2  GRPO on levels %s: %d steps x %d prompts x %d completions, rule rewards, KL to the SFT model%s%s\n\n",
              threads, cfg.num_params() / 1e6, cfg.name.c_str(), cfg.model.n_layer, cfg.model.d_model,
              architecture(cfg.model).c_str(), levels_text(cfg.data).c_str(), cfg.train.steps,
              cfg.train.batch_size, json(g.levels).dump().c_str(), g.steps, g.prompts_per_step, g.grpo.num_generations,
              g.credit_steps ? ", credit by calculator line" : "", g.ptx_coef > 0 ? ", the SFT loss beside it" : "");

  TrainResult sft;
  Timer t1;
  if (sft_ckpt.empty()) {
    std::printf("== stage 1/2: SFT ==\n");
    TrainOptions opt;
    opt.out_dir = out + "/sft";
    opt.label = "sft";
    opt.mask_prompt = true;
    opt.replicas = replicas;
    // A first slice of ~1/16 of the steps (~40 s on the 2-core AVX-512 machine) times the machine; the run then
    // resumes from the slice's checkpoint exactly (same weights, AdamW state and data order).
    opt.stop_after = std::max(1, cfg.train.steps / 16);
    const TrainResult slice = run_training(cfg, opt);
    if (slice.steps_done < cfg.train.steps) {
      print_time_estimate(t1.seconds(), slice.steps_done, cfg.train.steps);
      opt.stop_after = -1;
      opt.resume = slice.final_ckpt;
      sft = run_training(cfg, opt);
    } else {
      sft = slice;
    }
    sft_ckpt = sft.final_ckpt;
  } else {
    std::printf("== stage 1/2: skipped, starting from %s ==\n", sft_ckpt.c_str());
  }
  const double sft_s = t1.seconds();

  const std::vector<int>& eval_levels = g.eval_levels.empty() ? g.levels : g.eval_levels;
  Timer tp;
  const std::vector<SampledEvalResult> pk_sft =
      pass_at_k_per_level(sft_ckpt, cfg, eval_levels, pass_problems, pass_k, g.temperature, g.max_completion_length);
  if (!pk_sft.empty()) std::printf("pass@%d of the SFT checkpoint: %s\n", pass_k, format_duration(tp.seconds()).c_str());

  std::printf("\n== stage 2/2: GRPO ==\n");
  g.init_ckpt = sft_ckpt;
  g.out_dir = out + "/grpo";
  const GRPOResult r = run_grpo(g);
  const std::vector<SampledEvalResult> pk_rl =
      pass_at_k_per_level(r.final_ckpt, cfg, eval_levels, pass_problems, pass_k, g.temperature, g.max_completion_length);

  std::printf("\n================ tinyds demo: result ================\n");
  std::printf("  model            %.2fM parameters, %s\n", cfg.num_params() / 1e6, architecture(cfg.model).c_str());
  if (sft.steps_done > 0)
    std::printf("  stage 1 SFT      levels %s, %d steps in %s, %.1fK tokens/s median\n", levels_text(cfg.data).c_str(),
                sft.steps_done, format_duration(sft_s).c_str(), sft.tokens_per_s / 1000);
  std::printf("  stage 2 GRPO     levels %s, %zu steps x %d completions in %s\n", json(g.levels).dump().c_str(),
              r.steps.size(), g.prompts_per_step * g.grpo.num_generations, format_duration(r.seconds).c_str());
  print_table(r, g.levels, pk_sft, pk_rl);
  if (!sft.final_maxvio.empty()) {
    std::printf("  MoE balance      MaxVio per MoE layer at the end of SFT:");
    for (double v : sft.final_maxvio) std::printf(" %.3f", v);
    std::printf("  (max load / mean load - 1; 0 = even)\n");
  }
  write_pass_at_k(out + "/pass_at_k.jsonl", eval_levels, pk_sft, pk_rl, static_cast<int>(r.steps.size()));
  std::printf("  metrics          %s/sft/metrics.jsonl, %s/grpo/metrics.jsonl%s\n", out.c_str(), out.c_str(),
              pk_sft.empty() ? "" : (", " + out + "/pass_at_k.jsonl").c_str());
  std::printf("  checkpoints      %s (SFT), %s (GRPO)\n", sft_ckpt.c_str(), r.final_ckpt.c_str());
  Config held = cfg;  // stage 1 ran without evaluation; the held-out set is the one stage 2 evaluated on
  held.train.eval_problems = std::max(1, g.eval_problems);
  const std::vector<Problem> unseen = heldout_problems(held, g.levels.back());  // a test-split question
  if (!unseen.empty())
    std::printf("  try it           build/tinyds sample --ckpt %s --prompt \"%s\"\n", r.final_ckpt.c_str(),
                unseen.back().question.c_str());
  std::printf("  curves           %s\n", plot_curves(out).c_str());
  std::printf("  total            %s, peak RSS %s\n", format_duration(total.seconds()).c_str(),
              format_bytes(peak_rss_bytes()).c_str());
  std::printf("======================================================\n");
  return 0;
}

}  // namespace tinyds
