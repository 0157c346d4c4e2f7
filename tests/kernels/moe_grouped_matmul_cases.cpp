// tests/kernels/moe_grouped_matmul_cases.cpp — kernel table rows for kernels/moe_grouped_matmul.cu against the
// CPU's per-expert GEMMs (one tinyds/ops/matmul.h call per non-empty expert, as tinyds/model/moe_layer.cpp does).
//
// Shapes: N tokens, K experts per token, P = N*K sorted rows, E experts, IC input width, OC output width.
// The expert slices come from the CPU sort of a seeded routing; the skewed rows leave most experts empty (their
// weight gradient must stay as it was: the initial dweight is random, so a kernel that writes instead of
// accumulating, or adds something to an empty expert, fails). Widths 7, 17, 33, 65 are not multiples of the
// 16-wide tiles.
#include "kernels/moe_grouped_matmul.cuh"
#include "tests/kernels/kernel_util.h"
#include "tests/kernels/moe_cases_util.h"
#include "tinyds/ops/matmul.h"
#include "tinyds/ops/moe_dispatch.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;
using tinyds::test::random_routing;

struct GemmShape {
  int N, K, E, IC, OC;
  int n_used;  // experts that receive rows (E: all)
  std::string name() const {
    return "N=" + std::to_string(N) + " K=" + std::to_string(K) + " E=" + std::to_string(E) +
           " IC=" + std::to_string(IC) + " OC=" + std::to_string(OC) +
           (n_used < E ? " skewed to " + std::to_string(n_used) : "");
  }
};

// expert_offsets (E+1) of the CPU sort of a seeded routing
std::vector<int> expert_offsets(const GemmShape& s) {
  const std::vector<int> idx = random_routing(s.N, s.K, s.E, 71, s.n_used);
  const size_t P = idx.size();
  std::vector<int> off(s.E + 1), token(P), slot(P), pos(P);
  tinyds::moe_dispatch_sort(off.data(), token.data(), slot.data(), pos.data(), idx.data(), s.N, s.K, s.E);
  return off;
}

CaseResult grouped_forward_case(const GemmShape& s, int version) {
  const int P = s.N * s.K, IC = s.IC, OC = s.OC;
  const std::vector<int> off = expert_offsets(s);
  const std::vector<float> inp = random_floats(static_cast<size_t>(P) * IC, 72);
  const std::vector<float> w = random_floats(static_cast<size_t>(s.E) * OC * IC, 73);
  std::vector<float> out(static_cast<size_t>(P) * OC);
  for (int e = 0; e < s.E; e++) {  // the CPU reference: one GEMM per non-empty expert
    const int n = off[e + 1] - off[e];
    if (n == 0) continue;
    tinyds::matmul_forward(out.data() + static_cast<long>(off[e]) * OC, inp.data() + static_cast<long>(off[e]) * IC,
                           w.data() + static_cast<long>(e) * OC * IC, n, IC, OC);
  }
  DeviceBuffer<float> d_out(out.size()), d_inp(inp), d_w(w);
  DeviceBuffer<int> d_off(off);
  tinyds::cuda::moe_grouped_matmul_forward(d_out.get(), d_inp.get(), d_w.get(), d_off.get(), P, IC, OC, s.E, version);
  return {{{"out", d_out.download(), out}}};
}

CaseResult grouped_backward_case(const GemmShape& s, int version) {
  const int P = s.N * s.K, IC = s.IC, OC = s.OC;
  const std::vector<int> off = expert_offsets(s);
  const std::vector<float> inp = random_floats(static_cast<size_t>(P) * IC, 74);
  const std::vector<float> w = random_floats(static_cast<size_t>(s.E) * OC * IC, 75);
  const std::vector<float> dout = random_floats(static_cast<size_t>(P) * OC, 76);
  std::vector<float> dw = random_floats(w.size(), 77);  // accumulated into: starts non-zero
  DeviceBuffer<float> d_dw(dw);
  std::vector<float> dinp(static_cast<size_t>(P) * IC);
  for (int e = 0; e < s.E; e++) {
    const int n = off[e + 1] - off[e];
    if (n == 0) continue;
    const long r0 = off[e];
    tinyds::matmul_backward(dinp.data() + r0 * IC, dw.data() + static_cast<long>(e) * OC * IC,
                            dout.data() + r0 * OC, inp.data() + r0 * IC,
                            w.data() + static_cast<long>(e) * OC * IC, n, IC, OC);
  }
  DeviceBuffer<float> d_dinp(dinp.size()), d_dout(dout), d_inp(inp), d_w(w);
  DeviceBuffer<int> d_off(off);
  tinyds::cuda::moe_grouped_matmul_backward(d_dinp.get(), d_dw.get(), d_dout.get(), d_inp.get(), d_w.get(),
                                            d_off.get(), P, IC, OC, s.E, version);
  return {{{"dinp", d_dinp.download(), dinp}, {"dweight", d_dw.download(), dw}}};
}

}  // namespace

TINYDS_KERNEL_CASES(moe_grouped_matmul) {
  const std::vector<GemmShape> shapes = {
      {0, 2, 4, 16, 16, 4},     // empty batch: out untouched, dweight unchanged
      {1, 1, 4, 7, 5, 4},       // one row, widths below one tile
      {7, 2, 8, 33, 20, 8},
      {65, 4, 16, 33, 65, 16},  // the toy model's w1/w3 ratio, ragged tiles everywhere
      {65, 4, 16, 65, 33, 16},  // and w2's
      {33, 6, 64, 17, 16, 64},  // many experts with 0-5 rows: mostly empty row tiles
      {129, 2, 16, 33, 17, 3},  // skewed: 3 experts with ~86 rows each (6 row tiles), 13 empty
  };
  // Each output is an fp32 dot product of length IC (forward), OC (dinp) or the expert's row count (dweight, plus
  // the initial value), summed in another order than Eigen's (which uses FMAs with -march=native). With U(-1, 1)
  // inputs and length n <= ~90 the partial sums reach ~sqrt(n) ~ 10 and the rounding is a random walk of ~sqrt(n)
  // steps of ~eps * |partial sum| (~1e-6; observed <= 3.8e-6 on outputs up to ~10); a wrong expert's weight, a
  // lost tile or a missing accumulation misses by O(0.1..1). atol 1e-5, rtol 1e-5.
  const char* why = "fp32 dot products (n <= ~90) in another order than Eigen: ~1e-6 rounding (observed <= 3.8e-6)";
  for (int version : {1, 2})
    for (const GemmShape& s : shapes) {
      add({"moe_grouped_matmul_forward", version, s.name(), 1e-5, 1e-5, why,
           [s, version] { return grouped_forward_case(s, version); }});
      add({"moe_grouped_matmul_backward", version, s.name(), 1e-5, 1e-5, why,
           [s, version] { return grouped_backward_case(s, version); }});
    }
}
