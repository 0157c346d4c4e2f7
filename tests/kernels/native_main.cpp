// tests/kernels/native_main.cpp — entry point of tinyds_kernel_tests_native: the kernel table (kernel_table.cpp and
// every *_cases.cpp) linked with the nvcc-built kernels and the real CUDA runtime. Without a usable GPU it prints
// "skipped: no GPU" and exits 77, which CTest reports as Skipped (never as a pass).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "kernels/common.cuh"

int main(int argc, char** argv) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    std::printf("kernels native: skipped: no GPU (cudaGetDeviceCount: %s, %d devices)\n",
                err == cudaSuccess ? "ok" : cudaGetErrorString(err), count);
    return 77;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
    std::printf("kernels native: running on %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  doctest::Context context(argc, argv);
  return context.run();
}
