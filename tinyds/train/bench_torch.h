// tinyds/train/bench_torch.h — run the PyTorch twin's benchmark (tests/reference/bench_torch.py) on a config.
//
// Shapes: B batch (train.batch_size), T time (train.seq_len). The model config is passed field by field as
// bench_torch.py's flags (--d-model 256 --n-layer 4 ...), so both sides time exactly the same model even if the
// Python presets drift from Config::preset. It runs as a child process (never alongside tinyds's own timing).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tinyds/model/config.h"

namespace tinyds {

struct TorchBenchResult {
  bool ok = false;
  std::string why;                  // when !ok: why there is no result (no python, no torch, script error)
  std::string command;              // the command line that was run
  nlohmann::json result;            // bench_torch.py's JSON line (tokens_per_s, blas, gemm512_gflops, ...)
  std::vector<std::string> notes;   // its other output lines (e.g. the warning that torch is not using OpenBLAS)
};

// The command line for `python` running `script` on cfg's model, B and T, with `threads`, `warmup`, `steps`.
std::string torch_bench_command(const std::string& python, const std::string& script, const Config& cfg,
                                int threads, int warmup, int steps);

// Runs it (stdout and stderr captured) and parses the last line that is a JSON object. Never throws for a
// missing interpreter, script or torch: that is reported in `why`.
TorchBenchResult run_torch_bench(const std::string& python, const std::string& script, const Config& cfg,
                                 int threads, int warmup, int steps);
// The same for any command line of `python` running `script` that ends by printing such a JSON line (e.g.
// bench_torch.py --rollout SPEC.json: train/bench_rollout.h).
TorchBenchResult run_torch_command(const std::string& python, const std::string& script, const std::string& command);
// 'text' quoted for /bin/sh.
std::string shell_quote(const std::string& s);

}  // namespace tinyds
