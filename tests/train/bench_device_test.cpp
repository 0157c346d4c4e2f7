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
