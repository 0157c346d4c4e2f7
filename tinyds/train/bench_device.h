// tinyds/train/bench_device.h — `tinyds bench --device cuda`: the training step on the model's CUDA device, its
// tokens/s, achieved TFLOP/s and MFU against the device's datasheet peak (tinyds/device/peak_flops.h), and, with
// --analysis, the roofline bound of every kernel of the step on a chosen GPU (tinyds/train/roofline.h).
//
// Shapes: B batch, T time, N = B*T tokens per step.
//
// FLOPs: the model's, per token (train/bench.h: 6 N_active + attention), as the CPU bench and llm.c count them.
// MFU = achieved FLOP/s / peak: against FP32 (what the fp32 kernels of kernels/ can use), and for reference against
// TF32 and BF16 tensor cores (what training on this GPU usually reports).
// Under the CPU emulation of CUDA (the default build) the times are CPU times of emulated kernels: the report says
// they are not GPU figures and computes no MFU.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "tinyds/device/peak_flops.h"
#include "tinyds/model/config.h"

namespace tinyds {

// Times `warmup` + `steps` training steps of cfg on the cuda device (train/bench.h: time_training_steps) and prints
// and returns: {"device", "emulated", "tokens_per_s", "median_step_s", "step_s", "flops_per_token",
// "achieved_tflops", "peak" (or null), "mfu_fp32", "mfu_tf32", "mfu_bf16" (null under the emulation or for a GPU
// missing from the table), "notes", and with `profile` "phases" and the four step phases' medians}.
nlohmann::json bench_device_training(const Config& cfg, int warmup, int steps, bool profile);

// The peak a report uses: the device table's entry whose name `gpu` contains (e.g. "H100 PCIe"; an unknown name is
// an error listing the known ones).
const DevicePeak& device_peak_named(const std::string& gpu);

// Prints the per-kernel roofline table of one training step of cfg (its model, B and T) on `dev` and returns its
// figures: {"device", "rows" [...], "phases" [...], "step" {...}}. launch_s: the least time a launch costs.
nlohmann::json roofline_report(const Config& cfg, const DevicePeak& dev, double launch_s, int top_rows);

}  // namespace tinyds
