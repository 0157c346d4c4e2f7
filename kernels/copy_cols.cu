// kernels/copy_cols.cu — moving column blocks between row-major tensors on the GPU (MLA's per-head keys and rope
// parts, MTP's concatenation [hn, en] and its split), and the head sum that is the gradient of MLA's shared rope key.
// CPU reference: tinyds/ops/copy_cols.h.
//
// Shapes: N rows, H heads, w columns moved.
// Version 1 (the only one, and the default) of both: one thread per moved element, element (n, i) at
//   e = blockIdx.x * blockDim.x + threadIdx.x, n = e / w, i = e % w. Consecutive threads read and write
//   consecutive columns of one row (coalesced within a row). A pure copy: bound by memory bandwidth.
//   sum_head_cols: each thread owns one out[n, i] and adds its H inputs itself, in the CPU's order (h = 0, 1, ...
//   from 0), so the result has the CPU's bits and no two threads write one address (no atomics).
#include "kernels/common.cuh"
#include "kernels/copy_cols.cuh"

namespace tinyds::cuda {

constexpr int kCopyColsBlock = 256;  // threads per block: a multiple of 32

__global__ void copy_cols_kernel1(float* dst, int dst_width, int dcol, const float* src, int src_width, int scol,
                                  int N, int w) {
  const long e = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<long>(N) * w) return;  // the last block is partial
  const long n = e / w, i = e % w;
  dst[n * dst_width + dcol + i] = src[n * src_width + scol + i];
}

// forward was: every head's columns [col, col + w) hold a copy of one (N, w) block; its gradient is the sum.
__global__ void sum_head_cols_kernel1(float* out, const float* in, int N, int H, int width, int col, int w) {
  const long e = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<long>(N) * w) return;
  const long n = e / w, i = e % w;
  float g = 0.0f;
  for (int h = 0; h < H; h++) g += in[(n * H + h) * width + col + i];  // the CPU's order: same bits
  out[e] = g;
}

namespace {
void check_version(const char* op, int version) {
  if (version != 0 && version != 1)
    throw std::runtime_error(std::string(op) + ": no kernel version " + std::to_string(version) + " (have 1)");
}
}  // namespace

void copy_cols(float* dst, int dst_width, int dcol, const float* src, int src_width, int scol, int N, int w,
               int version) {
  check_version("copy_cols", version);
  const long n = static_cast<long>(N) * w;
  if (n == 0) return;  // a grid of 0 blocks is a launch error
  launch(copy_cols_kernel1, dim3(ceil_div(n, kCopyColsBlock)), dim3(kCopyColsBlock), 0, dst, dst_width, dcol, src,
         src_width, scol, N, w);
}

void sum_head_cols(float* out, const float* in, int N, int H, int width, int col, int w, int version) {
  check_version("sum_head_cols", version);
  const long n = static_cast<long>(N) * w;
  if (n == 0) return;
  launch(sum_head_cols_kernel1, dim3(ceil_div(n, kCopyColsBlock)), dim3(kCopyColsBlock), 0, out, in, N, H, width,
         col, w);
}

}  // namespace tinyds::cuda
