// tinyds/train/trainer.h — the training loop for `tinyds pretrain` and `tinyds sft`.
//
// Each step: the step's batch (train/batch_source.h: a fixed, seeded order that depends only on the step number, so
// a resumed run sees exactly the batches an uninterrupted one would), forward, backward, global grad-norm clip,
// AdamW with the warmup + cosine schedule, the MoE router-bias update. A progress line every log_every steps (step, loss, lr, grad norm, tokens/s, ETA),
// one JSON line per step in <out_dir>/metrics.jsonl, held-out exact-match evaluation every eval_every steps,
// and checkpoints (<out_dir>/latest.safetensors every ckpt_every steps, <out_dir>/final.safetensors at the end).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "tinyds/data/problem.h"
#include "tinyds/device/device.h"
#include "tinyds/model/config.h"

namespace tinyds {

struct TrainOptions {
  Device device = Device::cpu; // where the model, its gradients and AdamW's moments live and every op runs (--device);
                               // batches are built on the host and uploaded by the model's forward
  bool mask_prompt = true;     // sft: loss on the answer only; pretrain: on the whole sequence
  std::string out_dir = "runs/train";
  std::string init_ckpt;       // start from these weights (e.g. SFT after pretraining); fresh AdamW
  std::string resume;          // continue an interrupted run exactly (weights, AdamW state, step)
  std::string train_file;      // GSM8K JSONL to train on instead of generated problems
  std::string test_file;       // GSM8K JSONL to evaluate on instead of generated problems
  int stop_after = -1;         // stop (with a checkpoint) after this many total steps, as if interrupted
  int replicas = 0;            // data-parallel model replicas, one per thread (train/data_parallel.h); 0 = one per
                               // OpenMP thread. Same gradient up to float rounding; 1 = the ops thread instead.
                               // On cuda always 1 (the kernels parallelise each op; a note says so when > 1)
  bool ascii_fold = false;     // map typographic characters of --train-file / --test-file to ASCII (data/gsm8k_text.h)
  bool quiet = false;          // no progress lines (tests)
  std::string label = "train"; // printed at the start of progress lines
};

struct LevelAccuracy {
  int level = 0, n = 0;
  double accuracy = 0, mean_len = 0;
  std::vector<char> right;  // (n) 1 where held-out problem i was answered right (for paired comparisons)
  double level_lines = 0;   // share of answers with exactly `level` calculator lines (a level-L problem takes L)
};

struct TrainResult {
  std::vector<double> losses;                  // loss of every step this call ran
  std::vector<std::pair<int, double>> evals;   // (step, held-out accuracy)
  std::vector<LevelAccuracy> final_eval;       // per level, at the end
  double final_accuracy = -1;                  // over all held-out problems at the end (-1: not evaluated)
  double tokens_per_s = 0;                     // median over logged intervals
  double seconds = 0;
  int steps_done = 0;
  int replicas = 1;                            // data-parallel replicas it ran with
  std::string final_ckpt;
  std::vector<double> final_maxvio;            // MoE models: MaxVio per MoE layer at the last step
};

TrainResult run_training(const Config& cfg, const TrainOptions& opt);

// Generated training problems per entry of d.levels: n_train split in proportion to d.level_weights (equal shares
// when empty), rounded down, at least 1 each.
std::vector<int> problems_per_level(const DataConfig& d);

// Held-out problems for a config: eval_problems per training level from the test split (seeded by train.seed).
std::vector<Problem> heldout_problems(const Config& cfg, int level);

}  // namespace tinyds
