// tinyds/device/peak_flops.h — what a GPU can do at most, by its name: the datasheet peaks that MFU (model FLOPs
// utilisation, llm.c's figure) and the roofline bounds of `tinyds bench --device cuda` are measured against.
//
// MFU = achieved FLOP/s / peak FLOP/s, with the FLOPs of the model (6 N per token + attention, train/bench.h), not
// those a kernel happens to execute. Which peak: the kernels of kernels/ multiply in fp32 on the ordinary FP32
// units (no tensor cores), so their MFU is against `fp32`; `tf32` and `bf16` are what cuBLAS on tensor cores (TF32
// inputs, or BF16 inputs with fp32 accumulation) could reach, the usual denominator of GPU training MFU.
// All figures are DENSE: the datasheets' headline tensor numbers assume 2:4 structured sparsity and are 2x these.
#pragma once

#include <string>
#include <vector>

namespace tinyds {

struct DevicePeak {
  const char* match;      // a substring of the CUDA device name (cudaDeviceProp::name), e.g. "H100 PCIe"
  const char* label;      // what to print, e.g. "NVIDIA H100 SXM5 80GB"
  double fp32_tflops;     // FP32 FMA units, non-tensor (one FMA = 2 FLOPs)
  double tf32_tflops;     // TF32 tensor cores, dense
  double bf16_tflops;     // BF16 tensor cores with fp32 accumulation, dense
  double mem_gbps;        // DRAM (HBM or GDDR) bandwidth, GB/s
  int sm_count;           // streaming multiprocessors: a grid of fewer blocks leaves SMs idle
};

// Every device known, most specific names first (e.g. "H100 NVL" and "H100 PCIe" before the SXM "H100").
const std::vector<DevicePeak>& device_peaks();

// The entry whose `match` occurs in `device_name` ("NVIDIA H100 80GB HBM3 (sm_90)" -> H100 SXM5), the first in
// device_peaks() order; nullptr for an unknown device and for the CPU emulation.
const DevicePeak* find_device_peak(const std::string& device_name);

}  // namespace tinyds
