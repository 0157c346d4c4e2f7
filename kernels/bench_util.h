// kernels/bench_util.h — what the kernel timing files (kernels/bench.cpp, kernels/bench_posttrain.cpp) share:
// device arrays of seeded random values, one row of the table (op, version, shape, work per call, the call), and
// the timing and printing of a list of rows.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/common.cuh"

namespace tinyds::cuda::bench {

// A cudaMalloc'd array of n floats uniform in [lo, hi), freed at scope exit.
struct Buffer {
  float* p = nullptr;
  explicit Buffer(size_t n, unsigned seed = 1, float lo = -1.0f, float hi = 1.0f) {
    CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(1, n) * sizeof(float)));
    std::vector<float> host(n);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    for (float& x : host) x = dist(rng);
    CUDA_CHECK(cudaMemcpy(p, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  }
  ~Buffer() { cudaFree(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

// A cudaMalloc'd copy of `host` (ints, doubles ...), freed at scope exit.
template <typename T>
struct DeviceArray {
  T* p = nullptr;
  explicit DeviceArray(const std::vector<T>& host) {
    CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(1, host.size()) * sizeof(T)));
    CUDA_CHECK(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceArray() { cudaFree(p); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
};

struct Row {
  std::string op;
  int version;
  std::string shape;
  double flops;  // per call, 0 if the op is memory-bound (then bytes is printed as GB/s)
  double bytes;  // moved per call (the minimum: each input read once, each output written once)
  std::function<void()> call;
};

// Times each row (median of `reps` calls after one warm-up call) and prints it as a line of the table.
void time_rows(const std::vector<Row>& rows, int reps);

// The rows of kernels/bench_posttrain.cpp: log-probs, entropy, GRPO, PPO, GAE, whitening, KL, sampling.
// Timed and printed before it returns (its buffers live in it). Returns the number of rows.
int time_posttrain_rows(int reps);

}  // namespace tinyds::cuda::bench
