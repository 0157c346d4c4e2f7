// tinyds/cli/cmd_bench_device.cpp — `tinyds bench --device cuda`: the training step on the CUDA device (tokens/s,
// achieved TFLOP/s, MFU against the device's datasheet peak, the per-phase profile with --profile), or with
// --analysis the roofline bound of every kernel of the step on a GPU chosen by --gpu, computed from the shapes
// (no GPU needed). tinyds/train/bench_device.h has the definitions.
//
// Shapes: B batch, T time, N = B*T tokens per step, C d_model.
// Default preset: nano under the CPU emulation (the emulated kernels are ~100-1000x slower than the CPU path: a
// nano step takes a fraction of a second there), base on a GPU and for --analysis.
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "kernels/device.cuh"
#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/cli/config_options.h"
#include "tinyds/core/error.h"
#include "tinyds/device/device.h"
#include "tinyds/train/bench_device.h"

namespace tinyds {

namespace {

bool has_flag(int argc, char** argv, const char* flag) {
  for (int i = 1; i < argc; i++)
    if (std::string(argv[i]) == flag) return true;
  return false;
}

// The device the figures are for: --gpu if given; else the GPU this build runs on; else (emulation, or a GPU
// missing from the table) the H100 SXM, the device the analysis in notebooks/EXPERIMENTS.md is written for.
const DevicePeak& analysis_device(const std::string& gpu) {
  if (!gpu.empty()) return device_peak_named(gpu);
  if (!cuda_is_emulated() && cuda::device_count() > 0)  // a native build, on a GPU
    if (const DevicePeak* p = find_device_peak(cuda::device_name())) return *p;
  return device_peak_named("H100 80GB HBM3");
}

}  // namespace

int cmd_bench_device(int argc, char** argv) {
  std::string device_arg = "cuda";
  bool analysis = false, profile = false;
  const bool emulated = cuda_is_emulated();
  Config cfg = Config::preset(scan_preset(argc, argv, emulated && !has_flag(argc, argv, "--analysis") ? "nano" : "base"));
  Args a("tinyds bench --device cuda",
         "The training step on the CUDA device: tokens/s, achieved TFLOP/s and MFU against the device's datasheet "
         "peak, and with --profile the time of each phase. With --analysis instead: the FLOPs, DRAM bytes and roofline "
         "bound of every kernel of one training step on a GPU (--gpu), computed from the shapes, no GPU needed. "
         "Under the CPU emulation of CUDA (the default build; `make cuda` links the GPU kernels) the times are not GPU "
         "figures. Default preset: nano under the emulation, base on a GPU and for --analysis.");
  a.add("--device", device_arg, "cuda (`tinyds bench` without it times the CPU path)");
  ConfigOptions co;
  co.add_model_to(a, cfg);
  a.add("--batch-size", cfg.train.batch_size, "sequences per step B");
  a.add("--seq-len", cfg.train.seq_len, "tokens per sequence T");
  int steps = emulated ? 3 : 20, warmup = emulated ? 1 : 5;
  a.add("--steps", steps, "timed training steps (median taken)");
  a.add("--warmup", warmup, "untimed training steps first");
  a.add_flag("--profile", profile,
             "also time each phase of the step (MLA / attention, MoE / dense FFN, head + loss, MTP, optimizer), "
             "synchronising the device at every phase boundary (slower steps: the phases no longer overlap)");
  a.add_flag("--analysis", analysis,
             "instead, print the roofline bound of every kernel of one training step on --gpu (computed, no GPU run)");
  std::string gpu, json_path;
  double launch_us = 3.0;
  a.add("--gpu", gpu, "with --analysis: the GPU of the device table (e.g. 'H100 PCIe', 'A100-SXM4-80GB', 'L4'); "
                      "default: this build's GPU, else the H100 SXM");
  a.add("--launch-us", launch_us, "with --analysis: the least time one kernel launch costs, in microseconds");
  a.add("--json", json_path, "also write every figure to this JSON file");
  if (!a.parse(argc, argv)) return 0;
  if (parse_device(device_arg, "--device") != Device::cuda)
    throw_error("tinyds bench --device ", device_arg, ": this entry point is the cuda bench (drop --device for the CPU)");
  co.finish(cfg);
  if (steps < 1) throw_error("option --steps: ", steps, " must be at least 1");
  if (warmup < 0) throw_error("option --warmup: ", warmup, " must not be negative");
  if (launch_us < 0) throw_error("option --launch-us: ", launch_us, " must not be negative");
  cfg.validate();
  std::ofstream json_file;
  if (!json_path.empty()) {
    json_file.open(json_path);
    if (!json_file) throw_error("option --json: cannot open '", json_path, "' for writing");
  }

  const ModelConfig& m = cfg.model;
  std::printf("tinyds bench --device cuda%s: preset %s (C %d, %d layers, %s H %d D %d, V %d%s%s), B %d, T %d\n",
              analysis ? " --analysis" : "", co.preset.c_str(), m.d_model, m.n_layer, attention_kind_name(m.attention),
              m.n_head, m.head_dim, m.vocab_size, m.n_routed_experts > 0 ? ", MoE" : ", dense FFN",
              m.mtp_depth > 0 ? ", MTP" : "", cfg.train.batch_size, cfg.train.seq_len);
  nlohmann::json out = {{"preset", co.preset}, {"config", config_to_json(cfg)}};
  if (analysis) {
    out["analysis"] = roofline_report(cfg, analysis_device(gpu), launch_us * 1e-6, 24);
  } else {
    out["device_bench"] = bench_device_training(cfg, warmup, steps, profile);
  }
  if (json_file.is_open()) {
    json_file << out.dump(2) << "\n";
    if (!json_file) throw_error("option --json: writing '", json_path, "' failed");
    std::printf("\nwrote %s\n", json_path.c_str());
  }
  return 0;
}

}  // namespace tinyds
