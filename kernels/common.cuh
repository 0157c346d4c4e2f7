// kernels/common.cuh — what every kernel file includes first: the CUDA runtime (nvcc) or its CPU emulation (g++),
// a launch written once for both, and error checking.
//
// Under nvcc, `launch(kernel, grid, block, smem_bytes, args...)` is `kernel<<<grid, block, smem_bytes>>>(args...)`.
// Under g++ the same call runs every block of the grid on the CPU, each block's threads as cooperative fibers
// (kernels/emulation/cuda_emulation.h). Shared memory is declared with two macros:
//   STATIC_SHARED(float, tile, [16][16]);  is  __shared__ float tile[16][16];  under nvcc; the emulation needs the
//     array's name to fill it with NaN at each block's start (a read of a slot nobody wrote is then caught);
//   DYNAMIC_SHARED(float, buf);  is  extern __shared__ float buf[];  which has no C++ spelling.
// Both at kernel scope only.
#pragma once

#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#define TINYDS_CUDA_NATIVE 1
#define DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#define STATIC_SHARED(type, name, dims) __shared__ type name dims
#elif defined(TINYDS_CUDA_RUNTIME)
// Host code compiled by g++ for the native build (the kernel tests): the real runtime API, no kernels.
#include <cuda_runtime.h>
#define TINYDS_CUDA_NATIVE 1
#else
#include "kernels/emulation/cuda_emulation.h"
#define TINYDS_CUDA_NATIVE 0
#endif

namespace tinyds::cuda {

// Throws with the failing call, file and line: a kernel test then fails with a message, not a crash.
inline void check(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what + ": " +
                             cudaGetErrorString(err));
}

#if defined(__CUDACC__)
// One spelling of a kernel launch for both builds; checks the launch itself (bad grid, too much shared memory).
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem_bytes, Args... args) {
  kernel<<<grid, block, smem_bytes>>>(static_cast<Params>(args)...);
  check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__);
}
#endif

inline unsigned ceil_div(long long n, long long d) { return static_cast<unsigned>((n + d - 1) / d); }

}  // namespace tinyds::cuda

#define CUDA_CHECK(call) ::tinyds::cuda::check((call), #call, __FILE__, __LINE__)
