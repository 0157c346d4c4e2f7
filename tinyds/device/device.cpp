// tinyds/device/device.cpp — see device.h.
#include "tinyds/device/device.h"

#include "kernels/device.cuh"
#include "tinyds/core/error.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tinyds {

namespace {
thread_local Device t_current = Device::cpu;
}  // namespace

const char* device_name(Device d) { return d == Device::cuda ? "cuda" : "cpu"; }

Device parse_device(const std::string& s, const char* where) {
  if (s == "cpu") return Device::cpu;
  if (s == "cuda") return Device::cuda;
  throw_error(where, ": unknown device '", s, "' (known: cpu, cuda)");
}

Device current_device() { return t_current; }

OnDevice::OnDevice(Device d) : saved_(t_current) { t_current = d; }
OnDevice::~OnDevice() { t_current = saved_; }

bool cuda_is_emulated() { return cuda::emulated(); }

void require_device(Device d) {
  if (d == Device::cuda && cuda::device_count() == 0)
    throw_error("--device cuda: no CUDA device is usable on this machine (this build runs the nvcc-compiled kernels; "
                "use --device cpu, or the default build, whose cuda path runs under the CPU emulation)");
}

std::string describe_device(Device d) {
  if (d == Device::cpu) {
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    return "cpu (Eigen + OpenMP, " + std::to_string(threads) + (threads == 1 ? " thread)" : " threads)");
  }
  if (cuda::emulated())
    return "cuda: " + cuda::device_name() + "; build with `make cuda` on a GPU machine for GPU figures";
  return "cuda: " + cuda::device_name();
}

}  // namespace tinyds
