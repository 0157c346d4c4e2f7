// tests/kernels/copy_cols_cases.cpp — kernel table rows for kernels/copy_cols.cu against tinyds/ops/copy_cols.h.
// Tolerance 0 for both: copy_cols moves bits; sum_head_cols adds the H heads in the same order (h = 0.. from 0)
// on both sides, one fp32 add at a time, so the sums agree bit for bit.
#include "kernels/copy_cols.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/ops/copy_cols.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;

// dst starts random (not zero), so a kernel that wrote outside [dcol, dcol + w) would differ from the reference.
CaseResult copy_cols_case(int N, int dst_width, int dcol, int src_width, int scol, int w) {
  const std::vector<float> src = random_floats(static_cast<size_t>(N) * src_width, 1);
  std::vector<float> dst = random_floats(static_cast<size_t>(N) * dst_width, 2);
  DeviceBuffer<float> d_dst(dst), d_src(src);
  tinyds::copy_cols(dst.data(), dst_width, dcol, src.data(), src_width, scol, N, w);
  tinyds::cuda::copy_cols(d_dst.get(), dst_width, dcol, d_src.get(), src_width, scol, N, w);
  return {{{"dst", d_dst.download(), dst}}};
}

CaseResult sum_head_cols_case(int N, int H, int width, int col, int w) {
  const std::vector<float> in = random_floats(static_cast<size_t>(N) * H * width, 3);
  std::vector<float> out(static_cast<size_t>(N) * w);
  tinyds::sum_head_cols(out.data(), in.data(), N, H, width, col, w);
  DeviceBuffer<float> d_out(out.size()), d_in(in);
  tinyds::cuda::sum_head_cols(d_out.get(), d_in.get(), N, H, width, col, w);
  return {{{"out", d_out.download(), out}}};
}

}  // namespace

TINYDS_KERNEL_CASES(copy_cols) {
  const char* why_copy = "a copy: bit-identical";
  const char* why_sum = "the heads added in the CPU's order, one fp32 add at a time: bit-identical";
  // (N, dst_width, dcol, src_width, scol, w): MLA's rope key into head 1 of (N, 4, 24), MTP's en into [hn, en],
  // its split back out, and a block crossing 256 threads per row count.
  struct Copy { int N, dw, dc, sw, sc, w; };
  for (Copy c : {Copy{0, 8, 0, 8, 0, 8}, Copy{1, 3, 1, 2, 0, 2}, Copy{7, 4 * 24, 24 + 16, 8, 0, 8},
                 Copy{9, 2 * 33, 33, 33, 0, 33}, Copy{9, 33, 0, 2 * 33, 33, 33}, Copy{300, 40, 5, 17, 3, 13}}) {
    const std::string shape = "N=" + std::to_string(c.N) + " dst=" + std::to_string(c.dw) + "@" +
                              std::to_string(c.dc) + " src=" + std::to_string(c.sw) + "@" + std::to_string(c.sc) +
                              " w=" + std::to_string(c.w);
    add({"copy_cols", 1, shape, 0.0, 0.0, why_copy, [c] { return copy_cols_case(c.N, c.dw, c.dc, c.sw, c.sc, c.w); }});
  }
  // (N, H, width, col, w): MLA's dk_R = sum over heads of dk[:, :, D:D+R].
  struct Sum { int N, H, width, col, w; };
  for (Sum s : {Sum{0, 2, 8, 4, 4}, Sum{1, 1, 6, 4, 2}, Sum{7, 4, 24, 16, 8}, Sum{130, 5, 19, 11, 8}}) {
    const std::string shape = "N=" + std::to_string(s.N) + " H=" + std::to_string(s.H) + " width=" +
                              std::to_string(s.width) + " col=" + std::to_string(s.col) + " w=" + std::to_string(s.w);
    add({"sum_head_cols", 1, shape, 0.0, 0.0, why_sum, [s] { return sum_head_cols_case(s.N, s.H, s.width, s.col, s.w); }});
  }
}
