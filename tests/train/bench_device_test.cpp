// tests/train/bench_device_test.cpp — `tinyds bench --device cuda`'s figures: the --analysis report's JSON against the
// kernel table it summarises (launches, FLOPs, MFU arithmetic), and the device lookup's error.
// Shapes: B batch, T time, N = B*T tokens per step.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/model/config.h"
#include "tinyds/train/bench.h"
#include "tinyds/train/bench_device.h"
#include "tinyds/train/roofline.h"

using namespace tinyds;

TEST_CASE("train/bench_device: the analysis JSON sums the kernel table and derives MFU from the device's peaks") {
  const Config cfg = Config::preset("nano");
  const int B = cfg.train.batch_size, T = cfg.train.seq_len;
  const DevicePeak& dev = device_peak_named("H100 PCIe");
  const nlohmann::json j = roofline_report(cfg, dev, 5e-6, 0);
  const std::vector<KernelCost> ks = training_step_kernels(cfg.model, B, T);
  REQUIRE(j["rows"].size() == ks.size());
  long launches = 0;
  double bytes = 0;
  for (const KernelCost& k : ks) { launches += k.calls; bytes += k.calls * k.bytes; }
  const nlohmann::json& step = j["step"];
  CHECK(step["launches"].get<long>() == launches);
  CHECK(step["tokens"].get<long>() == long(B) * T);
  CHECK(step["bytes"].get<double>() == doctest::Approx(bytes));
  CHECK(step["launch_us"].get<double>() == doctest::Approx(5.0));
  CHECK(step["model_flops"].get<double>() == doctest::Approx(training_flops_per_token(cfg.model, T).per_token() * B * T));
  CHECK(j["device"]["label"] == "NVIDIA H100 PCIe");
  // Each bound: MFU = model FLOPs / time / peak, in the JSON's own units (ms, TFLOP/s).
  for (const char* bound : {"roofline_fp32", "tinyds_v3", "tinyds_v3_launch", "roofline_tf32", "roofline_tf32_launch"}) {
    CAPTURE(std::string(bound));
    const nlohmann::json& b = step[bound];
    const double tflops = step["model_flops"].get<double>() / (b["step_ms"].get<double>() * 1e-3) / 1e12;
    CHECK(b["tflops"].get<double>() == doctest::Approx(tflops));
    CHECK(b["mfu_fp32"].get<double>() == doctest::Approx(tflops / 51.0));
    CHECK(b["mfu_tf32"].get<double>() == doctest::Approx(tflops / 378.0));
    CHECK(b["mfu_bf16"].get<double>() == doctest::Approx(tflops / 756.5));
  }
  // The launch floor: each launch costs at least 5 us, summed over the rows (nano's launches are mostly shorter).
  double floor_ms = 0;
  for (const auto& row : j["rows"])
    floor_ms += row["calls"].get<double>() * std::max(row["tinyds_v3_us"].get<double>(), 5.0) / 1e3;
  CHECK(step["tinyds_v3_launch"]["step_ms"].get<double>() == doctest::Approx(floor_ms));
  CHECK(floor_ms >= launches * 5e-3);
  // Per phase and per kind of kernel, the launches add up to the step's.
  for (const char* group : {"phases", "kernels"}) {
    double sum = 0;
    for (const auto& row : j[group]) sum += row["launches"].get<double>();
    CHECK(sum == launches);
  }
}

TEST_CASE("train/bench_device: an unknown GPU name is an error naming the known ones") {
  CHECK(std::string(device_peak_named("H200").label) == "NVIDIA H200 SXM 141GB");
  try {
    device_peak_named("Voodoo 2");
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("Voodoo 2") != std::string::npos);
    CHECK(what.find("H100 PCIe") != std::string::npos);
  }
}

TEST_CASE("train/bench_device: a nano step on the emulated device reports tokens/s, the phases and no MFU") {
  const Config cfg = Config::preset("nano");  // MLA, MoE and MTP: every phase of the profile runs
  const nlohmann::json j = bench_device_training(cfg, 0, 2, true);
  CHECK(j["emulated"].get<bool>() == cuda_is_emulated());
  REQUIRE(j["step_s"].size() == 2);
  CHECK(j["tokens_per_s"].get<double>() > 0);
  CHECK(j["achieved_tflops"].get<double>() > 0);
  CHECK(j["flops_per_token"].get<double>() == training_flops_per_token(cfg.model, cfg.train.seq_len).per_token());
  // Under the emulation the times are CPU times: no datasheet peak, no MFU, and a note that says so.
  CHECK(j["peak"].is_null());
  CHECK(j["mfu_fp32"].is_null());
  CHECK(j["notes"][0].get<std::string>().find("NOT GPU figures") != std::string::npos);
  std::vector<std::string> phases;
  for (const auto& row : j["phases"]) phases.push_back(row["phase"].get<std::string>());
  for (const char* p : {"mla fwd", "mla bwd", "moe fwd", "moe bwd", "dense ffn fwd", "head + loss fwd"})
    CHECK_MESSAGE(std::find(phases.begin(), phases.end(), p) != phases.end(), p);
}

TEST_CASE("train/bench_device: the step timer runs the same first step on cuda as on the cpu") {
  const Config cfg = Config::preset("nano");
  const StepTimes cpu = time_training_steps(cfg, 0, 1, 7, nullptr, Device::cpu, false);
  const StepTimes dev = time_training_steps(cfg, 0, 1, 7, nullptr, Device::cuda, true);
  CHECK(dev.num_params == cpu.num_params);
  // The first forward's objective on the same weights and batch: fp32 both ways, the kernels summing in other orders
  // than Eigen: ~1e-6 relative (the design's figure for a nano step); 1e-5 leaves room and nothing more.
  CHECK(dev.last_loss == doctest::Approx(cpu.last_loss).epsilon(1e-5));
  CHECK_FALSE(dev.phase_s.empty());
}
