// tinyds/device/memory.h — the host-side steps of the model between ops (zeroing, copying, reading a loss back),
// on this thread's current device: plain std::fill / std::copy on the CPU, cudaMemset / cudaMemcpy on cuda
// (kernels/device.cuh). Host pointers are the caller's own memory; device pointers are Buffers with
// Place::device. On the CPU path "device" memory is host memory and every copy is a std::copy.
#pragma once

#include <algorithm>
#include <cstddef>

#include "kernels/device.cuh"
#include "tinyds/device/device.h"
#include "tinyds/core/ledger.h"
#include "tinyds/device/ops.h"

namespace tinyds::dev {

// p[0, n) = 0, p on the current device.
template <typename T>
void zero(T* p, std::size_t n) {
  if (on_cuda<float>()) return cuda::fill_zero(p, n * sizeof(T));
  std::fill(p, p + n, T(0));
}

// dst[0, n) = src[0, n), both on the current device.
template <typename T>
void copy(T* dst, const T* src, std::size_t n) {
  if (on_cuda<float>()) return cuda::copy_on_device(dst, src, n * sizeof(T));
  std::copy(src, src + n, dst);
}

// host[0, n) = src[0, n), src on the current device (on cuda this waits for the kernels that write src).
template <typename T>
void to_host(T* host, const T* src, std::size_t n) {
  if (on_cuda<float>()) return cuda::copy_to_host(host, src, n * sizeof(T));
  std::copy(src, src + n, host);
}

// dst[0, n) = host[0, n), dst on the current device.
template <typename T>
void from_host(T* dst, const T* host, std::size_t n) {
  if (on_cuda<float>()) return cuda::copy_to_device(dst, host, n * sizeof(T));
  std::copy(host, host + n, dst);
}

// The Place a model on `d` allocates its tensors in.
inline Place place_of(Device d) { return d == Device::cuda ? Place::device : Place::host; }

}  // namespace tinyds::dev
