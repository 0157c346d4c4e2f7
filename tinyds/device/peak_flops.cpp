// tinyds/device/peak_flops.cpp — see peak_flops.h. The figures are NVIDIA's datasheets (dense; the tensor-core
// headlines there are "with sparsity", twice these) and, for the GeForce card, its architecture whitepaper:
//   H100 SXM5 / PCIe / NVL: "NVIDIA H100 Tensor Core GPU" datasheet. SXM5: FP32 67 TFLOPS (132 SMs x 128 FP32
//     lanes x 2 x 1.98 GHz = 66.9), TF32 989 / 2, BF16 1979 / 2, HBM3 3.35 TB/s. PCIe: 51, 756 / 2, 1513 / 2,
//     HBM2e 2.0 TB/s, 114 SMs. NVL: 60, 835 / 2, 1671 / 2, 3.9 TB/s.
//   H200 SXM / NVL: "NVIDIA H200 Tensor Core GPU" datasheet: the H100's compute (SXM 67, 989 / 2, 1979 / 2; NVL
//     60, 835 / 2, 1671 / 2) with HBM3e at 4.8 TB/s.
//   A100 SXM4 / PCIe: "NVIDIA A100 Tensor Core GPU" datasheet: FP32 19.5, TF32 156, BF16 312 (dense), 108 SMs;
//     80 GB SXM4 2039 GB/s, 80 GB PCIe 1935 GB/s, 40 GB 1555 GB/s.
//   L4: "NVIDIA L4 Tensor Core GPU" datasheet: FP32 30.3, TF32 120 / 2, BF16 242 / 2, GDDR6 300 GB/s, 58 SMs.
//   L40S: "NVIDIA L40S" datasheet: FP32 91.6, TF32 366 / 2, BF16 733 / 2, 864 GB/s, 142 SMs.
//   GeForce RTX 4090: "NVIDIA Ada GPU Architecture" whitepaper, appendix table: FP32 82.6, TF32 82.6 (dense),
//     FP16/BF16 with FP32 accumulate 165.2 (dense), GDDR6X 1008 GB/s, 128 SMs.
#include "tinyds/device/peak_flops.h"

namespace tinyds {

const std::vector<DevicePeak>& device_peaks() {
  // cudaDeviceProp::name spellings: "NVIDIA H100 80GB HBM3" (SXM5), "NVIDIA H100 PCIe", "NVIDIA H100 NVL",
  // "NVIDIA H200", "NVIDIA H200 NVL", "NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-40GB", "NVIDIA A100 80GB PCIe",
  // "NVIDIA A100-PCIE-40GB", "NVIDIA L4", "NVIDIA L40S", "NVIDIA GeForce RTX 4090".
  static const std::vector<DevicePeak> table = {
      //  match               label                        FP32   TF32    BF16    GB/s  SMs
      {"H100 NVL",          "NVIDIA H100 NVL",            60.0,  417.5,  835.5, 3900, 132},
      {"H100 PCIe",         "NVIDIA H100 PCIe",           51.0,  378.0,  756.5, 2000, 114},
      {"H100",              "NVIDIA H100 SXM5 80GB",      66.9,  494.7,  989.4, 3350, 132},
      {"H200 NVL",          "NVIDIA H200 NVL",            60.0,  417.5,  835.5, 4800, 132},
      {"H200",              "NVIDIA H200 SXM 141GB",      66.9,  494.7,  989.4, 4800, 132},
      {"A100-SXM4-80GB",    "NVIDIA A100 SXM4 80GB",      19.5,  156.0,  312.0, 2039, 108},
      {"A100-SXM4-40GB",    "NVIDIA A100 SXM4 40GB",      19.5,  156.0,  312.0, 1555, 108},
      {"A100 80GB PCIe",    "NVIDIA A100 PCIe 80GB",      19.5,  156.0,  312.0, 1935, 108},
      {"A100-PCIE-40GB",    "NVIDIA A100 PCIe 40GB",      19.5,  156.0,  312.0, 1555, 108},
      {"L40S",              "NVIDIA L40S",                91.6,  183.0,  366.5,  864, 142},
      {"NVIDIA L4",         "NVIDIA L4",                  30.3,   60.0,  121.0,  300,  58},
      {"RTX 4090",          "NVIDIA GeForce RTX 4090",    82.6,   82.6,  165.2, 1008, 128},
  };
  return table;
}

const DevicePeak* find_device_peak(const std::string& device_name) {
  for (const DevicePeak& p : device_peaks())
    if (device_name.find(p.match) != std::string::npos) return &p;
  return nullptr;
}

}  // namespace tinyds
