// kernels/copy_cols.cuh — host launchers of the column-block copy and the head sum (kernels/copy_cols.cu), on device
// pointers. Mirrors tinyds/ops/copy_cols.h (same names, same argument order, version last).
// Shapes: N rows, H heads, w columns moved; row-major (N, width) and per-head (N, H, width) tensors.
#pragma once

namespace tinyds::cuda {

// dst[n, dcol + i] = src[n, scol + i] for i < w, n < N; dst's other columns untouched.
//   dst (N, dst_width), src (N, src_width)
void copy_cols(float* dst, int dst_width, int dcol, const float* src, int src_width, int scol, int N, int w,
               int version = 0);

// out[n, i] = sum_{h < H} in[n, h, col + i], heads added in order from 0.   out (N, w) written, in (N, H, width)
void sum_head_cols(float* out, const float* in, int N, int H, int width, int col, int w, int version = 0);

}  // namespace tinyds::cuda
