// tinyds/cli/cmd_demo.cpp — `tinyds demo` (what `make demo` runs): train the toy model end to end on
// GSM8K-style level-1 problems from scratch, then report held-out exact-match accuracy.
#include <cstdio>

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/cli/config_options.h"
#include "tinyds/core/ledger.h"
#include "tinyds/train/progress.h"
#include "tinyds/train/trainer.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tinyds {

int cmd_demo(int argc, char** argv) {
  Config cfg = Config::preset(scan_preset(argc, argv, "small"));
  Args a("tinyds demo", "Train the `small` model from scratch on generated level-1 arithmetic word problems (SFT: the "
                        "loss covers the answers), evaluating on held-out problems, and print what it reached.");
  ConfigOptions co;
  co.add_to(a, cfg);
  TrainOptions opt;
  opt.out_dir = "runs/demo";
  opt.label = "demo";
  a.add("--out", opt.out_dir, "output folder for metrics.jsonl and checkpoints");
  if (!a.parse(argc, argv)) return 0;
  co.finish(cfg);
  opt.mask_prompt = true;

  const ModelConfig& m = cfg.model;
  std::string arch = std::string(attention_kind_name(m.attention)) + " attention";
  if (m.n_routed_experts > 0)
    arch += ", MoE " + std::to_string(m.n_routed_experts) + " routed experts top-" + std::to_string(m.n_activated_experts) +
            " + " + std::to_string(m.n_shared_experts) + " shared (balance " + m.balance + ")";
  if (m.mtp_depth > 0) arch += ", MTP depth " + std::to_string(m.mtp_depth);
  std::printf("tinyds demo: a %.2fM-parameter DeepSeek-style transformer (%d layers, C %d, %s) learns arithmetic\n"
              "word problems from scratch on the CPU. Progress lines show loss, tokens/s and ETA; held-out exact match\n"
              "is measured every %d steps by greedy decoding.\n\n",
              cfg.num_params() / 1e6, m.n_layer, m.d_model, arch.c_str(), cfg.train.eval_every);
  TrainResult r = run_training(cfg, opt);

  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  std::printf("\n================ tinyds demo: result ================\n");
  std::printf("  model            %.2fM parameters (%s preset)\n", cfg.num_params() / 1e6, cfg.name.c_str());
  std::printf("  training         %d steps, %s, %.1fK tokens/s median on %d threads\n", r.steps_done,
              format_duration(r.seconds).c_str(), r.tokens_per_s / 1000, threads);
  for (const LevelAccuracy& l : r.final_eval)
    std::printf("  held-out level %d exact match: %.1f%% of %d problems (mean completion %.1f tokens)\n", l.level,
                100 * l.accuracy, l.n, l.mean_len);
  if (!r.final_maxvio.empty()) {
    std::printf("  MoE balance      final MaxVio per MoE layer:");
    for (double v : r.final_maxvio) std::printf(" %.3f", v);
    std::printf("  (max load / mean load - 1; 0 = perfectly even)\n");
  }
  std::printf("  accuracy during training:");
  for (auto& [step, acc] : r.evals) std::printf("  step %d: %.1f%%", step, 100 * acc);
  std::printf("\n  metrics          %s/metrics.jsonl\n  checkpoint       %s\n", opt.out_dir.c_str(), r.final_ckpt.c_str());
  // A held-out question the model never trained on, in the generator's phrasing.
  const std::vector<Problem> unseen = heldout_problems(cfg, cfg.data.levels.front());
  if (!unseen.empty())
    std::printf("  try it           build/tinyds sample --ckpt %s --prompt \"%s\"\n", r.final_ckpt.c_str(),
                unseen.back().question.c_str());
  std::printf("  peak RSS         %s\n", format_bytes(peak_rss_bytes()).c_str());
  std::printf("======================================================\n");
  return 0;
}

}  // namespace tinyds
