// tests/device/native_main.cpp — entry point of tinyds_device_tests_native: the whole-step parity tests of
// tests/device/ (the model, the trainer and the rollouts on --device cuda against the CPU path) linked with the
// nvcc-built kernels and the real CUDA runtime instead of the emulation. On a GPU every case runs there; without a
// usable GPU it prints "skipped: no GPU" and exits 77, which CTest reports as Skipped (never as a pass).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <exception>

#include "kernels/device.cuh"

int main(int argc, char** argv) {
  int count = 0;
  try {
    count = tinyds::cuda::device_count();  // 0 without a GPU or a driver
  } catch (const std::exception& e) {
    std::printf("device native: skipped: no GPU (%s)\n", e.what());
    return 77;
  }
  if (count == 0) {
    std::printf("device native: skipped: no GPU (cudaGetDeviceCount: 0 devices)\n");
    return 77;
  }
  std::printf("device native: running on %s\n", tinyds::cuda::device_name().c_str());
  doctest::Context context(argc, argv);
  return context.run();
}
