// tinyds/posttrain/trainer_common.cpp — see trainer_common.h.
#include "tinyds/posttrain/trainer_common.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/core/rng.h"
#include "tinyds/data/generator.h"
#include "tinyds/posttrain/preference.h"
#include "tinyds/train/evaluate.h"
#include "tinyds/train/paired_change.h"

namespace tinyds {

using json = nlohmann::json;

// The temporary LoadedCheckpoint lives until the constructor below returns; then its weights are freed.
PolicyAndReference::PolicyAndReference(const std::string& ckpt, Device device)
    : PolicyAndReference(load_checkpoint(ckpt), device) {}

PolicyAndReference::PolicyAndReference(const LoadedCheckpoint& ck, Device device)
    : config(ck.config),
      tokenizer(ck.tokenizer),
      policy(config.model, Role::policy, device),
      reference(config.model, Role::reference, device) {
  load_params_into(ck, policy);
  load_params_into(ck, reference);
}

std::ofstream open_metrics(const std::string& out_dir) {
  std::filesystem::create_directories(out_dir);
  std::ofstream metrics(out_dir + "/metrics.jsonl", std::ios::trunc);
  if (!metrics) throw_error("cannot write ", out_dir, "/metrics.jsonl");
  return metrics;
}

std::string format_fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::vector<Problem> posttrain_pool(const std::vector<int>& levels, int n_train, uint64_t seed, int max_seq_len,
                                    int spare, const std::string& label, bool quiet) {
  std::vector<Problem> pool;
  int dropped = 0;
  for (int level : levels)
    for (Problem& p : generate_problems(level, n_train, seed + 7919ull * level, Split::train)) {
      if (fits_in_context(p, max_seq_len, spare)) pool.push_back(std::move(p));
      else dropped++;
    }
  if (pool.empty())
    throw_error("no training problem of levels ", json(levels).dump(), " fits the model's max_seq_len = ",
                max_seq_len, " (all ", dropped, " are longer): use a model with a longer context");
  if (dropped && !quiet)
    std::printf("[%s] %d of %d problems do not fit in max_seq_len %d and were dropped\n", label.c_str(), dropped,
                dropped + static_cast<int>(pool.size()), max_seq_len);
  return pool;
}

std::vector<int> seeded_permutation(int n, uint64_t seed, uint64_t stream) {
  std::vector<int> perm(n);
  for (int i = 0; i < n; i++) perm[i] = i;
  Rng rng(seed, stream);
  for (int i = n - 1; i > 0; i--) std::swap(perm[i], perm[rng.randint(0, i)]);  // Fisher-Yates
  return perm;
}

std::vector<int> step_rows(const std::vector<int>& order, int step, int P) {
  std::vector<int> rows(P);
  for (int j = 0; j < P; j++) rows[j] = order[(static_cast<std::size_t>(step) * P + j) % order.size()];
  return rows;
}

void add_maxvio(json& rec, std::string& extra, const Transformer<float>& model) {
  if (model.num_moe_layers() == 0) return;
  const std::vector<double> maxvio = model.moe_maxvio();
  rec["maxvio"] = maxvio;
  extra += " | maxvio " + format_fixed(*std::max_element(maxvio.begin(), maxvio.end()), 2);
}

std::vector<std::vector<Problem>> heldout_per_level(const Config& cfg, const std::vector<int>& levels, int n) {
  Config eval_cfg = cfg;
  eval_cfg.train.eval_problems = n;
  std::vector<std::vector<Problem>> heldout;
  if (n > 0)
    for (int level : levels) heldout.push_back(heldout_problems(eval_cfg, level));
  return heldout;
}

std::vector<LevelAccuracy> evaluate_levels(Transformer<float>& model, const Tokenizer& tok,
                                           const std::vector<std::vector<Problem>>& heldout,
                                           const std::vector<int>& levels, int max_new_tokens, int step,
                                           std::ostream& metrics, const std::string& label, bool quiet,
                                           const std::string& who) {
  std::vector<LevelAccuracy> per;
  for (std::size_t i = 0; i < heldout.size(); i++) {
    const EvalResult r = evaluate_exact_match(model, tok, heldout[i], max_new_tokens, 2);
    const double level_lines = r.share_with_lines(levels[i]);
    per.push_back({levels[i], r.n, r.accuracy, r.mean_completion_len, r.right, level_lines});
    json rec{{"step", step}, {"eval_level", levels[i]}, {"eval_accuracy", r.accuracy}, {"eval_n", r.n},
             {"well_formed", r.well_formed}, {"mean_completion_len", r.mean_completion_len},
             {"level_lines", level_lines}};
    if (!who.empty()) rec["model"] = who;
    metrics << rec.dump() << "\n";
    if (!quiet) {
      std::printf("[%s] eval step %d%s level %d: exact match %d/%d = %.1f%%  (well-formed %d, mean length %.1f)\n",
                  label.c_str(), step, who.empty() ? "" : (" " + who).c_str(), levels[i], r.correct, r.n,
                  100.0 * r.accuracy, r.well_formed, r.mean_completion_len);
      for (const std::string& e : r.examples) std::printf("    %s\n", e.c_str());
    }
  }
  metrics.flush();
  return per;
}

void print_level_changes(const std::vector<LevelAccuracy>& before, const std::vector<LevelAccuracy>& after) {
  if (before.empty() || after.empty()) return;  // not evaluated (--eval-problems 0)
  std::printf("\n%-7s %10s %10s %8s   %s\n", "level", "before", "after", "change",
              "(paired standard error; McNemar's exact p: train/paired_change.h)");
  for (std::size_t i = 0; i < before.size() && i < after.size(); i++) {
    const LevelAccuracy &b = before[i], &a = after[i];
    std::printf("%-7d %9.1f%% %9.1f%% %+8.1f", b.level, 100 * b.accuracy, 100 * a.accuracy,
                100 * (a.accuracy - b.accuracy));
    if (const std::optional<PairedChange> c = paired_change_if_comparable(b.right, a.right))
      std::printf("   (+-%.1f; p %.2g; newly wrong %d, newly right %d)", 100 * c->se, c->p_value, c->only_a,
                  c->only_b);
    std::printf("\n");
  }
}

}  // namespace tinyds
