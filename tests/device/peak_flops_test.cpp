// tests/device/peak_flops_test.cpp — the datasheet peak table: the CUDA runtime's device names find their entries
// (the more specific names first), unknown devices and the emulation find none, and the figures hold together
// (FP32 peak = SMs x FP32 lanes per SM x 2 FLOPs x boost clock on the cards whose clock the datasheet gives).
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "tinyds/device/peak_flops.h"

using namespace tinyds;

TEST_CASE("device/peak_flops: CUDA device names find their datasheet entries") {
  // Names as cudaGetDeviceProperties spells them, with the " (sm_XY)" that cuda::device_name() appends.
  struct Case { const char* name; const char* label; double fp32, tf32, bf16, gbps; };
  const Case cases[] = {
      {"NVIDIA H100 80GB HBM3 (sm_90)", "NVIDIA H100 SXM5 80GB", 66.9, 494.7, 989.4, 3350},
      {"NVIDIA H100 PCIe (sm_90)", "NVIDIA H100 PCIe", 51.0, 378.0, 756.5, 2000},
      {"NVIDIA H100 NVL (sm_90)", "NVIDIA H100 NVL", 60.0, 417.5, 835.5, 3900},
      {"NVIDIA H200 (sm_90)", "NVIDIA H200 SXM 141GB", 66.9, 494.7, 989.4, 4800},
      {"NVIDIA A100-SXM4-80GB (sm_80)", "NVIDIA A100 SXM4 80GB", 19.5, 156.0, 312.0, 2039},
      {"NVIDIA A100-PCIE-40GB (sm_80)", "NVIDIA A100 PCIe 40GB", 19.5, 156.0, 312.0, 1555},
      {"NVIDIA L4 (sm_89)", "NVIDIA L4", 30.3, 60.0, 121.0, 300},
      {"NVIDIA L40S (sm_89)", "NVIDIA L40S", 91.6, 183.0, 366.5, 864},  // "L4" is a prefix of "L40S": L40S first
      {"NVIDIA GeForce RTX 4090 (sm_89)", "NVIDIA GeForce RTX 4090", 82.6, 82.6, 165.2, 1008},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.name));
    const DevicePeak* p = find_device_peak(c.name);
    REQUIRE(p != nullptr);
    CHECK(std::string(p->label) == c.label);
    // Exact: the table's literals against the same literals (a wrong row or a wrong match order changes them).
    CHECK(p->fp32_tflops == c.fp32);
    CHECK(p->tf32_tflops == c.tf32);
    CHECK(p->bf16_tflops == c.bf16);
    CHECK(p->mem_gbps == c.gbps);
  }
}

TEST_CASE("device/peak_flops: unknown devices and the emulation have no entry") {
  CHECK(find_device_peak("CUDA emulation on the CPU (not a GPU)") == nullptr);
  CHECK(find_device_peak("Tesla V100-SXM2-16GB (sm_70)") == nullptr);  // no TF32 / BF16 tensor cores: not listed
  CHECK(find_device_peak("") == nullptr);
}

TEST_CASE("device/peak_flops: FP32 peaks agree with SMs x lanes x 2 x boost clock") {
  // Lanes per SM and boost clocks from the architecture whitepapers: Hopper 128 at 1.98 GHz (H100 SXM5), Ampere
  // GA100 64 at 1.41 GHz, Ada 128 at 2.52 GHz (RTX 4090). The datasheets round to 3 significant digits: 1% covers
  // the rounding and nothing else.
  const struct { const char* name; int lanes; double ghz; } clocks[] = {
      {"NVIDIA H100 80GB HBM3", 128, 1.98}, {"NVIDIA A100-SXM4-80GB", 64, 1.41}, {"NVIDIA GeForce RTX 4090", 128, 2.52}};
  for (const auto& c : clocks) {
    CAPTURE(std::string(c.name));
    const DevicePeak* p = find_device_peak(c.name);
    REQUIRE(p != nullptr);
    const double computed = p->sm_count * c.lanes * 2 * c.ghz / 1e3;  // TFLOP/s
    CHECK(std::fabs(computed - p->fp32_tflops) / p->fp32_tflops < 0.01);
  }
  // Every entry: tensor cores at least as fast as the FP32 units, BF16 twice TF32 (dense) on these generations;
  // 2% covers the datasheets' rounding (the L4's 121 / 60 = 2.017), not a TF32 figure left with sparsity (4x).
  for (const DevicePeak& p : device_peaks()) {
    CAPTURE(std::string(p.label));
    CHECK(p.tf32_tflops >= p.fp32_tflops);
    CHECK(std::fabs(p.bf16_tflops / p.tf32_tflops - 2.0) < 0.02);
    CHECK(p.mem_gbps > 0);
    CHECK(p.sm_count > 0);
  }
}
