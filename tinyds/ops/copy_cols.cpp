// tinyds/ops/copy_cols.cpp — column-block copies and the head sum (see copy_cols.h).
// Shapes: N rows, H heads, w columns moved. Outputs WRITTEN (=).
#include "tinyds/ops/copy_cols.h"

#include <cstring>

namespace tinyds {

template <typename real>
void copy_cols(real* dst,        // (N, dst_width) columns [dcol, dcol + w) written
               int dst_width, int dcol,
               const real* src,  // (N, src_width)
               int src_width, int scol, int N, int w) {
  for (long n = 0; n < N; n++)
    std::memcpy(dst + n * dst_width + dcol, src + n * src_width + scol, sizeof(real) * w);
}

// The backward of copying one (N, w) block into all H heads: a broadcast's gradient is a sum.
template <typename real>
void sum_head_cols(real* out,       // (N, w) written
                   const real* in,  // (N, H, width)
                   int N, int H, int width, int col, int w) {
  for (long n = 0; n < N; n++) {
    real* g = out + n * w;
    for (int i = 0; i < w; i++) g[i] = real(0);
    for (int h = 0; h < H; h++) {  // heads in a fixed order: deterministic, and the kernel's order too
      const real* src = in + (n * H + h) * width + col;
      for (int i = 0; i < w; i++) g[i] += src[i];
    }
  }
}

template void copy_cols<float>(float*, int, int, const float*, int, int, int, int);
template void copy_cols<double>(double*, int, int, const double*, int, int, int, int);
template void sum_head_cols<float>(float*, const float*, int, int, int, int, int);
template void sum_head_cols<double>(double*, const double*, int, int, int, int, int);

}  // namespace tinyds
