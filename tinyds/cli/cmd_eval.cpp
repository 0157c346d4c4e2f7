// tinyds/cli/cmd_eval.cpp — `tinyds eval`: held-out greedy exact match of a checkpoint per level (train/evaluate.h),
// with --samples pass@1..K (train/pass_at_k.h), and with --compare a second checkpoint on the same problems and
// whether the change between the two is more than noise (McNemar's paired test, train/paired_change.h).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/cli/config_options.h"
#include "tinyds/core/error.h"
#include "tinyds/data/gsm8k.h"
#include "tinyds/device/device.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/evaluate.h"
#include "tinyds/train/paired_change.h"
#include "tinyds/train/pass_at_k.h"
#include "tinyds/train/trainer.h"

namespace tinyds {

namespace {

// A checkpoint loaded for evaluation: its model (on `device`), tokenizer and training config.
struct Evaluated {
  std::string path;
  Config config;
  Tokenizer tok;
  std::unique_ptr<Transformer<float>> model;
};

Evaluated load_for_eval(const std::string& path, Device device) {
  LoadedCheckpoint ck = load_checkpoint(path);
  Evaluated e{path, ck.config, ck.tokenizer, nullptr};
  require_device(device);
  // On cuda the weights live in device memory; the decoding itself runs on a CPU copy (train/evaluate.h).
  e.model = std::make_unique<Transformer<float>>(ck.config.model, Role::policy, device);
  load_params_into(ck, *e.model);
  return e;
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  Args a("tinyds eval", "Held-out exact-match accuracy of a checkpoint (greedy decoding); with --samples K also "
                        "pass@1..K of K sampled completions per problem (DESIGN 6.1); with --compare a second "
                        "checkpoint on the same problems and McNemar's paired test of the change.");
  std::string ckpt, compare, test_file;
  std::vector<int> levels = {1};
  int n = 200, max_new = 96, n_errors = 0, samples = 0;
  float temperature = 1.0f;
  uint64_t seed = 0, sample_seed = 1;
  a.add_required("--ckpt", ckpt, "checkpoint to evaluate");
  a.add("--compare", compare, "a second checkpoint (B) evaluated on the same problems: the change from --ckpt (A) "
                              "to it per level, its standard error and McNemar's exact p (train/paired_change.h)");
  a.add("--levels", levels, "generated held-out levels to evaluate");
  a.add("--n", n, "held-out problems per level");
  a.add("--seed", seed, "seed of the held-out problems (default: --ckpt's training seed, whose held-out set its "
                        "trainer evaluated on; each seed draws a different set)");
  a.add("--test-file", test_file, "evaluate on this GSM8K JSONL file instead");
  a.add("--max-new-tokens", max_new, "longest completion");
  a.add("--errors", n_errors, "also print up to this many wrong completions per level, with the expected answer");
  bool fold = false;
  a.add_flag("--ascii-fold", fold, "map typographic characters of --test-file to ASCII");
  a.add("--samples", samples, "K: also sample K completions per problem and print pass@1..K (0 = off)");
  a.add("--temperature", temperature, "sampling temperature of --samples (> 0)");
  a.add("--sample-seed", sample_seed, "seed of the --samples draws");
  std::string device_opt = "cpu";
  add_device_option(a, device_opt);
  if (!a.parse(argc, argv)) return 0;
  const Device device = parse_device(device_opt, "option --device");
  std::printf("device: %s\n", describe_device(device).c_str());
  if (max_new < 0) throw_error("option --max-new-tokens: ", max_new, " must not be negative");
  if (n_errors < 0) throw Error("tinyds eval: --errors must be >= 0, got " + std::to_string(n_errors));
  if (samples < 0) throw Error("tinyds eval: --samples must be >= 0, got " + std::to_string(samples));
  if (samples > 0 && !(temperature > 0))
    throw Error("tinyds eval: --temperature must be > 0 with --samples (greedy is the plain eval), got " +
                std::to_string(temperature));
  std::vector<Evaluated> models;
  models.push_back(load_for_eval(ckpt, device));
  if (!compare.empty()) models.push_back(load_for_eval(compare, device));

  // One checkpoint on one set of problems: prints its exact match (and pass@k) and returns the greedy result.
  auto report = [&](Evaluated& m, const std::string& what, const std::vector<Problem>& ps) {
    EvalResult r;
    try {
      r = evaluate_exact_match(*m.model, m.tok, ps, max_new, 3, n_errors);
    } catch (const Error& e) {  // finite but huge weights (a run about to diverge) overflow in the forward
      throw_error(m.path, ": the model's forward failed: ", e.what(),
                  " (weights of a run that was diverging? see its metrics.jsonl: loss and grad_norm)");
    }
    std::printf("%s: exact match %d/%d = %.1f%%, well-formed %d, mean completion %.1f tokens\n", what.c_str(), r.correct,
                r.n, 100 * r.accuracy, r.well_formed, r.mean_completion_len);
    std::printf("  answers by calculator lines:");
    for (std::size_t k = 0; k < r.lines.size(); k++)
      if (r.lines[k]) std::printf(" %zu line%s %d%s", k, k == 1 ? "" : "s", r.lines[k], k + 1 < r.lines.size() ? "," : "");
    std::printf("\n");
    for (const std::string& e : r.examples) std::printf("    %s\n", e.c_str());
    if (!r.errors.empty()) std::printf("  wrong (first %zu):\n", r.errors.size());
    for (const std::string& e : r.errors) std::printf("    %s\n", e.c_str());
    if (samples == 0) return r;
    const SampledEvalResult s = evaluate_pass_at_k(*m.model, m.tok, ps, samples, temperature, max_new, sample_seed);
    std::printf("%s: %d samples per problem at temperature %g:", what.c_str(), samples, temperature);
    for (int k = 1; k <= samples; k++) std::printf(" pass@%d %.1f%%", k, 100 * s.pass_at[k - 1]);
    std::printf("\n  entropy %.3f nats/token (mean -log p of the sampled tokens), mean completion %.1f tokens, "
                "degenerate groups %d/%d = %.1f%% (%d all right, %d all wrong)\n",
                s.entropy, s.mean_completion_len, s.all_right + s.all_wrong, s.problems, 100 * s.degenerate_share,
                s.all_right, s.all_wrong);
    return r;
  };
  // Every checkpoint on one set of problems; with --compare, the paired change from A to B.
  auto report_all = [&](const std::string& what, const std::vector<Problem>& ps) {
    if (models.size() == 1) {
      report(models[0], what, ps);
      return;
    }
    const EvalResult ra = report(models[0], what + " [A " + models[0].path + "]", ps);
    const EvalResult rb = report(models[1], what + " [B " + models[1].path + "]", ps);
    const PairedChange c = paired_change(ra.right, rb.right);
    std::printf("%s: A -> B %.1f%% -> %.1f%%, change %+.1f points (standard error %.1f); right only under A %d, only "
                "under B %d: McNemar exact p = %.3g%s\n",
                what.c_str(), 100 * ra.accuracy, 100 * rb.accuracy, 100 * c.change, 100 * c.se, c.only_a, c.only_b,
                c.p_value, c.p_value < 0.05 ? "" : " (not distinguishable from noise at 5%)");
  };
  if (!test_file.empty()) {
    report_all(test_file, read_gsm8k_jsonl(test_file, fold));
  } else {
    Config c = models[0].config;
    c.train.eval_problems = n;
    if (a.given("--seed")) c.train.seed = seed;
    std::printf("held-out problems of seed %llu%s\n", static_cast<unsigned long long>(c.train.seed),
                a.given("--seed") ? "" : " (the checkpoint's training seed)");
    for (int level : levels) report_all("level " + std::to_string(level), heldout_problems(c, level));
  }
  return 0;
}

}  // namespace tinyds
