// tinyds/cli/cmd_train.cpp — `tinyds init | pretrain | sft`.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/cli/config_options.h"
#include "tinyds/core/error.h"
#include "tinyds/device/device.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/trainer.h"

namespace tinyds {

int cmd_init(int argc, char** argv) {
  Config cfg = Config::preset(scan_preset(argc, argv, "nano"));
  Args a("tinyds init", "Write a freshly initialised checkpoint (used by the PyTorch golden-state test).");
  ConfigOptions co;
  co.add_to(a, cfg);
  std::string out;
  bool force = false;
  a.add_required("--out", out, "checkpoint file to write (.safetensors)");
  a.add_flag("--force", force, "overwrite --out if it exists");
  if (!a.parse(argc, argv)) return 0;
  if (!force && std::filesystem::exists(out))
    throw_error("tinyds init: ", out, " exists; pass --force to overwrite it");
  co.finish(cfg);
  Transformer<float> model(cfg.model);
  model.init_weights(cfg.train.seed);
  save_checkpoint(out, cfg, Tokenizer(), model, nullptr, TrainState{});
  std::printf("wrote %s (%s preset, %zu parameters, seed %llu)\n", out.c_str(), cfg.name.c_str(), model.num_params(),
              static_cast<unsigned long long>(cfg.train.seed));
  return 0;
}

namespace {

// `--resume CKPT` continues the checkpoint's own run: its config (preset, model, schedule, data) and tokenizer.
// These options change only how long it runs, what it evaluates and where it writes, so they are honoured;
// any other option given with --resume is refused by name (it would silently not apply).
const char* const kResumeOptions[] = {"--resume", "--steps", "--ckpt-every", "--eval-every", "--eval-problems",
                                      "--out", "--train-file", "--test-file", "--ascii-fold", "--stop-after",
                                      "--replicas", "--quiet", "--device"};

Config resumed_config(const Args& a, const Config& given, const std::string& path) {
  const LoadedCheckpoint ck = load_checkpoint(path);
  std::string refused;
  for (const std::string& name : a.given_options()) {
    const bool honoured = std::find(std::begin(kResumeOptions), std::end(kResumeOptions), name) != std::end(kResumeOptions);
    const bool same_preset = name == "--preset" && given.name == ck.config.name;
    if (!honoured && !same_preset) refused += (refused.empty() ? "" : ", ") + name;
  }
  if (!refused.empty())
    throw_error("--resume ", path, " continues that run with its own config (preset ", ck.config.name,
                "); these options cannot change it: ", refused,
                " (to change them, start a new run from its weights with --init ", path, ")");
  Config cfg = ck.config;
  if (a.given("--steps")) cfg.train.steps = given.train.steps;
  if (a.given("--ckpt-every")) cfg.train.ckpt_every = given.train.ckpt_every;
  if (a.given("--eval-every")) cfg.train.eval_every = given.train.eval_every;
  if (a.given("--eval-problems")) cfg.train.eval_problems = given.train.eval_problems;
  if (cfg.train.steps < ck.state.step)
    throw_error("option --steps: ", cfg.train.steps, " is fewer than the ", ck.state.step, " steps ", path,
                " has already run");
  cfg.validate();
  return cfg;
}

int run_train_command(int argc, char** argv, bool sft) {
  const char* name = sft ? "tinyds sft" : "tinyds pretrain";
  Config cfg = Config::preset(scan_preset(argc, argv, "small"));
  Args a(name, sft ? "Supervised fine-tuning on GSM8K-style problems: the loss covers the answer only (prompt masked)."
                   : "Pretraining on GSM8K-style problems: the loss covers every token of question and answer.");
  ConfigOptions co;
  co.add_to(a, cfg);
  TrainOptions opt;
  opt.mask_prompt = sft;
  opt.out_dir = sft ? "runs/sft" : "runs/pretrain";
  opt.label = sft ? "sft" : "pretrain";
  a.add("--out", opt.out_dir, "output folder for metrics.jsonl and checkpoints");
  a.add("--init", opt.init_ckpt, "start from this checkpoint's weights (fresh optimizer)");
  a.add("--resume", opt.resume, "continue this checkpoint's run exactly (weights, optimizer, step)");
  a.add("--train-file", opt.train_file, "GSM8K JSONL to train on instead of generated problems");
  a.add("--test-file", opt.test_file, "GSM8K JSONL to evaluate on instead of generated problems");
  a.add("--stop-after", opt.stop_after, "stop with a resumable checkpoint after this many steps (-1 = no)");
  a.add("--replicas", opt.replicas, "data-parallel model replicas, one per thread, each on its share of the batch rows "
        "(0 = one per OpenMP thread; 1 = one model whose ops use the threads)");
  a.add_flag("--ascii-fold", opt.ascii_fold,
             "map typographic quotes, dashes, EUR, GBP, x, /, no-break space and tab in --train-file/--test-file to ASCII");
  a.add_flag("--quiet", opt.quiet, "no progress lines");
  std::string device = "cpu";
  add_device_option(a, device);
  if (!a.parse(argc, argv)) return 0;
  opt.device = parse_device(device, "option --device");
  std::printf("[%s] device: %s\n", opt.label.c_str(), describe_device(opt.device).c_str());
  if (opt.stop_after < -1) throw_error("option --stop-after: ", opt.stop_after, " must be >= 0 (or -1 = no)");
  if (!opt.resume.empty() && !opt.init_ckpt.empty())
    throw_error("options --resume and --init exclude each other (--init starts a new run from weights)");
  if (!opt.resume.empty()) cfg = resumed_config(a, cfg, opt.resume);  // its own config, not a preset's
  else co.finish(cfg);
  TrainResult r = run_training(cfg, opt);
  if (r.final_accuracy >= 0)
    std::printf("%s: held-out exact match %.1f%% after %d steps (%.0f tokens/s median, %.1f s)\n", name,
                100 * r.final_accuracy, r.steps_done, r.tokens_per_s, r.seconds);
  return 0;
}

}  // namespace

int cmd_pretrain(int argc, char** argv) { return run_train_command(argc, argv, false); }
int cmd_sft(int argc, char** argv) { return run_train_command(argc, argv, true); }

}  // namespace tinyds
