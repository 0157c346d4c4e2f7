// tinyds/ops/copy_cols.h — moving column blocks between row-major tensors: the copies and the one sum that join
// and split per-head or concatenated tensors in the model (MLA's keys and rope parts, MTP's [hn, en]).
//
// Shapes: N rows; a tensor of width W is row-major (N, W); a per-head tensor (N, H, W) has row (n, h) at
// (n*H + h)*W. Columns [col, col + w) of a row are the block being moved.
//   copy_cols:      dst[n, dcol + i] = src[n, scol + i]               i < w, n < N     (a gather/scatter of columns)
//   sum_head_cols:  out[n, i] = sum_{h < H} in[n, h, col + i]         the gradient of a broadcast to H heads
// Both are exact in any order except sum_head_cols, which adds the heads in order h = 0, 1, ..., H-1 from 0 (its
// CUDA twin, kernels/copy_cols.cu, does the same, so the two give the same bits).
// Conventions: see embedding.h.
#pragma once

namespace tinyds {

// dst (N, dst_width): columns [dcol, dcol + w) written, the others untouched.   src (N, src_width)
template <typename real>
void copy_cols(real* dst, int dst_width, int dcol, const real* src, int src_width, int scol, int N, int w);

// out (N, w) written.   in (N, H, width); col + w <= width
template <typename real>
void sum_head_cols(real* out, const real* in, int N, int H, int width, int col, int w);

}  // namespace tinyds
