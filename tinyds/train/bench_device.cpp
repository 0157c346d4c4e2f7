// tinyds/train/bench_device.cpp — see bench_device.h. Shapes: B batch, T time, N = B*T.
#include "tinyds/train/bench_device.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

#include "kernels/device.cuh"
#include "tinyds/core/error.h"
#include "tinyds/device/device.h"
#include "tinyds/train/bench.h"
#include "tinyds/train/roofline.h"

namespace tinyds {

using json = nlohmann::json;

const DevicePeak& device_peak_named(const std::string& gpu) {
  if (const DevicePeak* p = find_device_peak(gpu)) return *p;
  std::string known;
  for (const DevicePeak& p : device_peaks()) known += std::string(known.empty() ? "" : ", ") + p.match;
  throw_error("option --gpu: no peak figures for '", gpu, "' (known: ", known, ")");
}

namespace {

// One printed line of three step times: seconds -> "t ms, tokens/s, MFU vs FP32 / TF32 / BF16".
json step_figures(const char* what, double seconds, double model_flops, long tokens, const DevicePeak& dev) {
  const double tflops = model_flops / seconds / 1e12;
  std::printf("  %-44s %8.3f ms  %9.0f tokens/s  %7.2f TFLOP/s  MFU %5.1f%% FP32, %5.2f%% TF32, %5.2f%% BF16\n", what,
              1e3 * seconds, tokens / seconds, tflops, 100 * tflops / dev.fp32_tflops, 100 * tflops / dev.tf32_tflops,
              100 * tflops / dev.bf16_tflops);
  return {{"step_ms", 1e3 * seconds}, {"tokens_per_s", tokens / seconds}, {"tflops", tflops},
          {"mfu_fp32", tflops / dev.fp32_tflops}, {"mfu_tf32", tflops / dev.tf32_tflops},
          {"mfu_bf16", tflops / dev.bf16_tflops}};
}

}  // namespace

namespace {

void progress_dot(int i, int total) {
  std::printf(".");
  if (i + 1 == total) std::printf("\n");
  std::fflush(stdout);
}

}  // namespace

json bench_device_training(const Config& cfg, int warmup, int steps, bool profile) {
  require_device(Device::cuda);  // a native build without a usable GPU stops here, naming the problem
  const ModelConfig& m = cfg.model;
  const int B = cfg.train.batch_size, T = cfg.train.seq_len;
  const bool emulated = cuda_is_emulated();
  const DevicePeak* peak = emulated ? nullptr : find_device_peak(cuda::device_name());
  json out = {{"device", describe_device(Device::cuda)}, {"emulated", emulated}, {"profile", profile},
              {"notes", json::array()}};
  std::printf("device  %s\n", describe_device(Device::cuda).c_str());
  auto note = [&](const std::string& text) {
    std::printf("  note: %s\n", text.c_str());
    out["notes"].push_back(text);
  };
  if (emulated)
    note("CUDA emulation on the CPU: the times below are CPU times of emulated kernels, NOT GPU figures, and no MFU "
         "is computed (`make cuda` on a GPU machine builds build-cuda/tinyds for GPU figures)");
  else if (!peak)
    note("no datasheet peak for this GPU in tinyds/device/peak_flops.cpp: tokens/s and TFLOP/s only, no MFU");
  if (profile)
    note("--profile: the device is synchronised at every phase boundary, so the step is slower than without it");

  std::printf("\nmeasuring training steps on cuda (%d warmup + %d timed)", warmup, steps);
  std::fflush(stdout);
  const StepTimes st = time_training_steps(cfg, warmup, steps, cfg.train.seed, progress_dot, Device::cuda, profile);
  const double med = median_of(st.step_s), tps = B * T / med;
  const FlopCount f = training_flops_per_token(m, T);
  const double tflops = f.per_token() * B * T / med / 1e12;
  const auto [lo, hi] = std::minmax_element(st.step_s.begin(), st.step_s.end());
  std::printf("\ntinyds training on cuda (%lld params; B %d, T %d; loss %.3f)\n", (long long)st.num_params, B, T,
              st.last_loss);
  std::printf("  step time        %.3f ms median (min %.3f, max %.3f over %d steps)\n", 1e3 * med, 1e3 * *lo, 1e3 * *hi,
              steps);
  std::printf("  throughput       %.0f tokens/s (B*T / median step)\n", tps);
  std::printf("  FLOPs/token      %.2f MFLOP (6 N_active + attention, as `tinyds bench`)\n", f.per_token() / 1e6);
  std::printf("  achieved         %.4f TFLOP/s\n", tflops);
  out["tokens_per_s"] = tps;
  out["median_step_s"] = med;
  out["step_s"] = st.step_s;
  out["flops_per_token"] = f.per_token();
  out["achieved_tflops"] = tflops;
  out["params"] = st.num_params;
  out["last_loss"] = st.last_loss;
  out["warmup"] = warmup;
  out["steps"] = steps;
  if (peak) {
    std::printf("  MFU              %.2f%% of FP32 (%.1f TFLOP/s: what the fp32 kernels can use), %.3f%% of TF32 "
                "(%.1f), %.3f%% of BF16 (%.1f) tensor cores; %s datasheet, dense\n",
                100 * tflops / peak->fp32_tflops, peak->fp32_tflops, 100 * tflops / peak->tf32_tflops,
                peak->tf32_tflops, 100 * tflops / peak->bf16_tflops, peak->bf16_tflops, peak->label);
    out["peak"] = {{"label", peak->label}, {"fp32_tflops", peak->fp32_tflops}, {"tf32_tflops", peak->tf32_tflops},
                   {"bf16_tflops", peak->bf16_tflops}, {"mem_gbps", peak->mem_gbps}};
    out["mfu_fp32"] = tflops / peak->fp32_tflops;
    out["mfu_tf32"] = tflops / peak->tf32_tflops;
    out["mfu_bf16"] = tflops / peak->bf16_tflops;
  } else {
    out["peak"] = nullptr;
    out["mfu_fp32"] = out["mfu_tf32"] = out["mfu_bf16"] = nullptr;
  }
  if (profile) {
    std::printf("  phases           forward %.3f + backward %.3f + norm/clip %.3f + adamw %.3f ms (medians)\n",
                1e3 * median_of(st.forward_s), 1e3 * median_of(st.backward_s), 1e3 * median_of(st.clip_s),
                1e3 * median_of(st.adamw_s));
    const double fb = median_of(st.forward_s) + median_of(st.backward_s);
    std::vector<std::pair<std::string, double>> sorted = st.phase_s;
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    std::printf("  inside forward + backward (%.3f ms, synchronised at each phase, mean of the timed steps):\n", 1e3 * fb);
    json rows = json::array();
    for (const auto& [name, sec] : sorted) {
      std::printf("    %-18s %9.3f ms  %5.1f%%\n", name.c_str(), 1e3 * sec, 100 * sec / fb);
      rows.push_back({{"phase", name}, {"ms_per_step", 1e3 * sec}, {"percent_of_fwd_bwd", 100 * sec / fb}});
    }
    out["phases"] = rows;
    out["median_forward_s"] = median_of(st.forward_s);
    out["median_backward_s"] = median_of(st.backward_s);
    out["median_clip_s"] = median_of(st.clip_s);
    out["median_adamw_s"] = median_of(st.adamw_s);
  }
  return out;
}

json roofline_report(const Config& cfg, const DevicePeak& dev, double launch_s, int top_rows) {
  const ModelConfig& m = cfg.model;
  const int B = cfg.train.batch_size, T = cfg.train.seq_len;
  const long N = static_cast<long>(B) * T;
  const std::vector<KernelCost> kernels = training_step_kernels(m, B, T);
  const StepBound s = step_bound(kernels, dev, launch_s);
  const double model_flops = training_flops_per_token(m, T).per_token() * N;

  std::printf("device  %s (datasheet, dense): FP32 %.1f TFLOP/s, TF32 %.1f, BF16 %.1f, DRAM %.0f GB/s, %d SMs\n",
              dev.label, dev.fp32_tflops, dev.tf32_tflops, dev.bf16_tflops, dev.mem_gbps, dev.sm_count);
  std::printf("        ridge point: %.1f FLOP/byte on FP32, %.1f on TF32 tensor cores (below it a kernel is "
              "memory-bound)\n", dev.fp32_tflops * 1e3 / dev.mem_gbps, dev.tf32_tflops * 1e3 / dev.mem_gbps);

  // Rows by the current kernels' time per step, longest first.
  std::vector<std::pair<const KernelCost*, KernelBound>> rows;
  for (const KernelCost& k : kernels) rows.emplace_back(&k, kernel_bound(k, dev));
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.first->calls * a.second.tinyds_v3_s > b.first->calls * b.second.tinyds_v3_s;
  });
  std::printf("\nper kernel of one training step (per launch: FLOPs, DRAM bytes, FLOP/byte, blocks; per step: calls x "
              "bound), longest first under the current kernels\n");
  std::printf("  %-19s %-10s %-28s %5s %9s %8s %7s %6s %6s %9s %9s %9s\n", "kernel", "phase", "shape", "calls",
              "MFLOP", "MB", "FLOP/B", "blocks", "bound", "roof us", "v3 us", "tf32 us");
  json jrows = json::array();
  double rest_v3 = 0;
  int shown = 0;
  for (const auto& [k, b] : rows) {
    jrows.push_back({{"kernel", k->kernel}, {"phase", k->phase}, {"shape", k->shape}, {"calls", k->calls},
                     {"flops", k->flops}, {"bytes", k->bytes}, {"blocks", k->blocks}, {"gemm", k->gemm},
                     {"intensity", b.intensity}, {"memory_bound", b.memory_bound},
                     {"roofline_fp32_us", 1e6 * b.roofline_fp32_s}, {"roofline_tf32_us", 1e6 * b.roofline_tf32_s},
                     {"tinyds_v3_us", 1e6 * b.tinyds_v3_s}});
    if (shown++ >= top_rows) { rest_v3 += k->calls * b.tinyds_v3_s; continue; }
    std::printf("  %-19s %-10s %-28s %5ld %9.2f %8.3f %7.1f %6ld %6s %9.1f %9.1f %9.1f\n", k->kernel.c_str(),
                k->phase.c_str(), k->shape.c_str(), k->calls, k->flops / 1e6, k->bytes / 1e6, b.intensity, k->blocks,
                b.memory_bound ? "memory" : "FP32", 1e6 * k->calls * b.roofline_fp32_s,
                1e6 * k->calls * b.tinyds_v3_s, 1e6 * k->calls * b.roofline_tf32_s);
  }
  if (shown > top_rows)
    std::printf("  %-19s %-10s %-28s %5s %9s %8s %7s %6s %6s %9s %9.1f\n", "(the other rows)", "", "", "", "", "", "",
                "", "", "", 1e6 * rest_v3);

  // Per phase and per kind of kernel: the sums of their rows.
  auto groups = [&](const char* title, const char* key_name, bool by_phase) {
    std::map<std::string, std::vector<double>> sums;  // flops, bytes, launches, roof fp32, v3, tf32
    for (const auto& [k, b] : rows) {
      std::vector<double>& p = sums[by_phase ? k->phase : k->kernel];
      p.resize(6);
      p[0] += k->calls * k->flops; p[1] += k->calls * k->bytes; p[2] += k->calls;
      p[3] += k->calls * b.roofline_fp32_s; p[4] += k->calls * b.tinyds_v3_s; p[5] += k->calls * b.roofline_tf32_s;
    }
    std::printf("\n%s\n  %-19s %10s %10s %8s %10s %10s %10s %7s\n", title, key_name, "GFLOP", "MB", "launches",
                "roof us", "v3 us", "tf32 us", "v3 %");
    json j = json::array();
    for (const auto& [name, p] : sums) {
      std::printf("  %-19s %10.3f %10.1f %8.0f %10.1f %10.1f %10.1f %6.1f%%\n", name.c_str(), p[0] / 1e9, p[1] / 1e6,
                  p[2], 1e6 * p[3], 1e6 * p[4], 1e6 * p[5], 100 * p[4] / s.tinyds_v3_s);
      j.push_back({{key_name, name}, {"flops", p[0]}, {"bytes", p[1]}, {"launches", p[2]},
                   {"roofline_fp32_us", 1e6 * p[3]}, {"tinyds_v3_us", 1e6 * p[4]}, {"roofline_tf32_us", 1e6 * p[5]}});
    }
    return j;
  };
  const json jphases = groups("per phase (sums of its rows)", "phase", true);
  const json jkinds = groups("per kind of kernel (sums of its rows)", "kernel", false);

  std::printf("\none step: %ld tokens, model FLOPs %.3f GFLOP (6 N_active + attention; the kernels' own count %.3f, of "
              "which GEMMs %.1f%%), DRAM bytes %.1f MB, %ld launches\n", N, model_flops / 1e9, s.flops / 1e9,
              100 * s.gemm_flops / s.flops, s.bytes / 1e6, s.launches);
  json step = {{"tokens", N}, {"model_flops", model_flops}, {"kernel_flops", s.flops}, {"gemm_flops", s.gemm_flops},
               {"bytes", s.bytes}, {"launches", s.launches}, {"launch_us", 1e6 * launch_s}};
  step["roofline_fp32"] = step_figures("roofline, FP32 units, every SM busy", s.roofline_fp32_s, model_flops, N, dev);
  step["tinyds_v3"] = step_figures("current kernels (v3 GEMM, SM fill)", s.tinyds_v3_s, model_flops, N, dev);
  char what[96];
  std::snprintf(what, sizeof what, "  + launches at %.1f us each", 1e6 * launch_s);
  step["tinyds_v3_launch"] = step_figures(what, s.tinyds_v3_launch_s, model_flops, N, dev);
  step["roofline_tf32"] = step_figures("roofline, GEMMs on TF32 tensor cores", s.roofline_tf32_s, model_flops, N, dev);
  step["roofline_tf32_launch"] = step_figures(what, s.roofline_tf32_launch_s, model_flops, N, dev);
  return {{"device", {{"label", dev.label}, {"fp32_tflops", dev.fp32_tflops}, {"tf32_tflops", dev.tf32_tflops},
                      {"bf16_tflops", dev.bf16_tflops}, {"mem_gbps", dev.mem_gbps}, {"sm_count", dev.sm_count}}},
          {"rows", jrows}, {"phases", jphases}, {"kernels", jkinds}, {"step", step}};
}

}  // namespace tinyds
