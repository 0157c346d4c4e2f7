// tinyds/device/device.h — where the model's ops run: `--device cpu` (the reference ops of tinyds/ops/, Eigen +
// OpenMP) or `--device cuda` (the kernels of kernels/, on device memory).
//
// The model is written once (tinyds/model/). Each op it calls goes through tinyds/device/ops.h, which runs the CPU
// reference or the CUDA kernel of the same name and arguments, chosen by this thread's current device. A model
// built for Device::cuda keeps its parameters, gradients, AdamW moments and activations in device memory
// (Place::device in the memory ledger) and sets the current device for the span of each of its calls (OnDevice).
//
// Which CUDA: the kernel library the executable links. The default build links the kernels compiled by g++ against
// the CPU emulation of CUDA (kernels/emulation/): `--device cuda` then runs every kernel on the CPU, slowly and
// exactly as written, which is how the tests check the device path on any machine. `make cuda` (CMake option
// TINYDS_NATIVE_CUDA) links the nvcc-built kernels and the CUDA runtime instead: the same path on a GPU.
#pragma once

#include <string>

namespace tinyds {

enum class Device { cpu, cuda };

const char* device_name(Device d);  // "cpu", "cuda"
// "cpu" or "cuda"; anything else is an error naming `where` (e.g. "--device").
Device parse_device(const std::string& s, const char* where);

// The device this thread's ops run on: Device::cpu unless an OnDevice scope says otherwise.
Device current_device();

// Sets this thread's current device for the scope's lifetime (scopes nest; the previous device comes back).
class OnDevice {
 public:
  explicit OnDevice(Device d);
  ~OnDevice();
  OnDevice(const OnDevice&) = delete;
  OnDevice& operator=(const OnDevice&) = delete;

 private:
  Device saved_;
};

// Throws a clear error when `d` is cuda and no CUDA device is usable (a native build on a machine without a GPU).
void require_device(Device d);

// One line for a command to print: "cpu (Eigen + OpenMP, 2 threads)", "cuda: NVIDIA H100 80GB HBM3 (sm_90)",
// "cuda: CUDA emulation on the CPU (not a GPU; build with `make cuda` on a GPU machine for GPU figures)".
std::string describe_device(Device d);

// true when Device::cuda runs under the CPU emulation (the default build).
bool cuda_is_emulated();

}  // namespace tinyds
