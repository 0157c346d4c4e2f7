// kernels/residual.cu — the residual connection on the GPU: the simplest kernels, and the pattern every
// elementwise kernel follows. CPU reference: tinyds/ops/residual.h.
//
// Shapes: n elements (B*T*C for a residual stream).
// Version 1 (the only one, and the default): one thread per element, `i = blockIdx.x * blockDim.x + threadIdx.x`.
//   Consecutive threads touch consecutive floats, so each warp's 32 loads form one 128-byte transaction
//   (coalesced). The grid has ceil(n / block) blocks; the last one is partial, hence the `if (i < n)` guard.
//   An elementwise kernel does ~1 FLOP per 12 bytes moved: it is bound by memory bandwidth, and a "faster"
//   version could only move fewer bytes (e.g. fuse the add into the kernel that produced b).
#include "kernels/common.cuh"
#include "kernels/residual.cuh"

namespace tinyds::cuda {

constexpr int kResidualBlock = 256;  // threads per block: a multiple of 32, large enough to hide memory latency

__global__ void residual_forward_kernel1(float* out, const float* a, const float* b, long n) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];  // the last block is partial: its surplus threads do nothing
}

// forward was: out = a + b, so both inputs receive dout unchanged.
__global__ void residual_backward_kernel1(float* da, float* db, const float* dout, long n) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if (da) da[i] = dout[i];
  if (db) db[i] = dout[i];
}

__global__ void add_inplace_kernel1(float* acc, const float* x, long n) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) acc[i] += x[i];  // one thread per element: no two threads touch the same acc[i], so no atomics
}

__global__ void scale_inplace_kernel1(float* x, float s, long n) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= s;
}

namespace {
void check_version(const char* op, int version) {
  if (version != 0 && version != 1)
    throw std::runtime_error(std::string(op) + ": no kernel version " + std::to_string(version) + " (have 1)");
}
}  // namespace

void residual_forward(float* out, const float* a, const float* b, long n, int version) {
  check_version("residual_forward", version);
  if (n == 0) return;  // a grid of 0 blocks is a launch error
  launch(residual_forward_kernel1, dim3(ceil_div(n, kResidualBlock)), dim3(kResidualBlock), 0, out, a, b, n);
}

void residual_backward(float* da, float* db, const float* dout, long n, int version) {
  check_version("residual_backward", version);
  if (n == 0) return;
  launch(residual_backward_kernel1, dim3(ceil_div(n, kResidualBlock)), dim3(kResidualBlock), 0, da, db, dout, n);
}

void add_inplace(float* acc, const float* x, long n, int version) {
  check_version("add_inplace", version);
  if (n == 0) return;
  launch(add_inplace_kernel1, dim3(ceil_div(n, kResidualBlock)), dim3(kResidualBlock), 0, acc, x, n);
}

void scale_inplace(float* x, float s, long n, int version) {
  check_version("scale_inplace", version);
  if (n == 0) return;
  launch(scale_inplace_kernel1, dim3(ceil_div(n, kResidualBlock)), dim3(kResidualBlock), 0, x, s, n);
}

}  // namespace tinyds::cuda
