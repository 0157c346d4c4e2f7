// tests/kernels/kernel_util.h — helpers for the kernel table's rows: device buffers, upload/download, seeded random
// inputs, and the Output record that the table compares.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/common.cuh"
#include "tests/kernels/kernel_table.h"

namespace tinyds::test {

// A cudaMalloc'd array of floats (or ints), freed when it goes out of scope. A cudaFree error (a guard region found
// overwritten under emulation) is reported on stderr: a destructor must not throw, and the launch that did the
// write has already thrown.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) { CUDA_CHECK(cudaMalloc(&ptr_, n * sizeof(T) + (n == 0 ? 1 : 0))); }
  // Allocates and uploads `host`.
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() {
    if (ptr_ && cudaFree(ptr_) != cudaSuccess) std::fprintf(stderr, "DeviceBuffer: cudaFree failed\n");
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return ptr_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    if (host.size() != n_) throw std::runtime_error("DeviceBuffer::upload: size mismatch");
    CUDA_CHECK(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    CUDA_CHECK(cudaDeviceSynchronize());  // the launchers return without waiting (native build)
    CUDA_CHECK(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

// n floats uniform in [lo, hi), from `seed` (the same seed gives the same inputs to kernel and reference).
inline std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// n ints uniform in [lo, hi].
inline std::vector<int> random_ints(size_t n, uint64_t seed, int lo, int hi) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int> v(n);
  for (int& x : v) x = dist(rng);
  return v;
}

// The largest |got - ref| and the first failing element of one output, against atol + rtol*|ref|.
struct Comparison {
  double max_abs_error = 0;  // over all elements
  long first_bad = -1;       // first element outside tolerance or not finite, or -1
  std::string message;       // describes first_bad
};
Comparison compare_output(const Output& o, double atol, double rtol);

}  // namespace tinyds::test
