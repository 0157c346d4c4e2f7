// tests/kernels/moe_dispatch_cases.cpp — kernel table rows for kernels/moe_dispatch.cu against
// tinyds/ops/moe_dispatch.h.
//
// Shapes: N tokens, C width, E experts, K experts per token, P = N*K sorted rows.
// The sort rows demand the CPU's exact outputs (offsets, and the order of the pairs within each expert: a sort
// that is right but not stable fails them). The skewed rows route every token to a few experts, leaving most
// experts empty and the used ones with long slices that span several 128-pair chunks of the placing kernel.
// Gather/combine rows use the CPU sort's pair_pos / sorted_token as input, so each checks one kernel alone.
#include "kernels/moe_dispatch.cuh"
#include "tests/kernels/kernel_util.h"
#include "tests/kernels/moe_cases_util.h"
#include "tinyds/ops/moe_dispatch.h"

namespace {

using tinyds::test::as_floats;
using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;
using tinyds::test::random_routing;

struct DispatchShape {
  int N, K, E, C;
  int n_used;  // experts that receive tokens (E: all; fewer: a skewed routing)
  std::string name() const {
    return "N=" + std::to_string(N) + " K=" + std::to_string(K) + " E=" + std::to_string(E) +
           " C=" + std::to_string(C) + (n_used < E ? " skewed to " + std::to_string(n_used) : "");
  }
};

// The CPU sort of a seeded routing: what the gather/combine rows take as input.
struct Sorted {
  std::vector<int> idx, offsets, token, slot, pos;
};
Sorted cpu_sort(const DispatchShape& s, uint64_t seed) {
  Sorted o;
  const size_t P = static_cast<size_t>(s.N) * s.K;
  o.idx = random_routing(s.N, s.K, s.E, seed, s.n_used);
  o.offsets.resize(s.E + 1);
  o.token.resize(P);
  o.slot.resize(P);
  o.pos.resize(P);
  tinyds::moe_dispatch_sort(o.offsets.data(), o.token.data(), o.slot.data(), o.pos.data(), o.idx.data(), s.N, s.K,
                            s.E);
  return o;
}

CaseResult sort_case(const DispatchShape& s) {
  const Sorted ref = cpu_sort(s, 31);
  const size_t P = ref.token.size();
  DeviceBuffer<int> d_idx(ref.idx), d_off(s.E + 1), d_token(P), d_slot(P), d_pos(P);
  tinyds::cuda::moe_dispatch_sort(d_off.get(), d_token.get(), d_slot.get(), d_pos.get(), d_idx.get(), s.N, s.K, s.E);
  return {{{"expert_offsets", as_floats(d_off.download()), as_floats(ref.offsets)},
           {"sorted_token", as_floats(d_token.download()), as_floats(ref.token)},
           {"sorted_slot", as_floats(d_slot.download()), as_floats(ref.slot)},
           {"pair_pos", as_floats(d_pos.download()), as_floats(ref.pos)}}};
}

CaseResult gather_forward_case(const DispatchShape& s) {
  const Sorted srt = cpu_sort(s, 32);
  const int P = s.N * s.K;
  const std::vector<float> x = random_floats(static_cast<size_t>(s.N) * s.C, 33);
  std::vector<float> xe(static_cast<size_t>(P) * s.C);
  tinyds::moe_gather_forward(xe.data(), x.data(), srt.token.data(), P, s.C);
  DeviceBuffer<float> d_xe(xe.size()), d_x(x);
  DeviceBuffer<int> d_token(srt.token);
  tinyds::cuda::moe_gather_forward(d_xe.get(), d_x.get(), d_token.get(), P, s.C);
  return {{{"xe", d_xe.download(), xe}}};
}

CaseResult gather_backward_case(const DispatchShape& s) {
  const Sorted srt = cpu_sort(s, 34);
  const std::vector<float> dxe = random_floats(static_cast<size_t>(s.N) * s.K * s.C, 35);
  std::vector<float> dx(static_cast<size_t>(s.N) * s.C);
  tinyds::moe_gather_backward(dx.data(), dxe.data(), srt.pos.data(), s.N, s.K, s.C);
  DeviceBuffer<float> d_dx(dx.size()), d_dxe(dxe);
  DeviceBuffer<int> d_pos(srt.pos);
  tinyds::cuda::moe_gather_backward(d_dx.get(), d_dxe.get(), d_pos.get(), s.N, s.K, s.C);
  return {{{"dx", d_dx.download(), dx}}};
}

CaseResult combine_forward_case(const DispatchShape& s) {
  const Sorted srt = cpu_sort(s, 36);
  const std::vector<float> ye = random_floats(static_cast<size_t>(s.N) * s.K * s.C, 37);
  const std::vector<float> w = random_floats(static_cast<size_t>(s.N) * s.K, 38, 0.0f, 1.0f);
  std::vector<float> out(static_cast<size_t>(s.N) * s.C);
  tinyds::moe_combine_forward(out.data(), ye.data(), w.data(), srt.pos.data(), s.N, s.K, s.C);
  DeviceBuffer<float> d_out(out.size()), d_ye(ye), d_w(w);
  DeviceBuffer<int> d_pos(srt.pos);
  tinyds::cuda::moe_combine_forward(d_out.get(), d_ye.get(), d_w.get(), d_pos.get(), s.N, s.K, s.C);
  return {{{"out", d_out.download(), out}}};
}

CaseResult combine_backward_case(const DispatchShape& s) {
  const Sorted srt = cpu_sort(s, 39);
  const size_t P = static_cast<size_t>(s.N) * s.K;
  const std::vector<float> ye = random_floats(P * s.C, 40), w = random_floats(P, 41, 0.0f, 1.0f);
  const std::vector<float> dout = random_floats(static_cast<size_t>(s.N) * s.C, 42);
  std::vector<float> dye(P * s.C), dw(P);
  tinyds::moe_combine_backward(dye.data(), dw.data(), dout.data(), ye.data(), w.data(), srt.pos.data(), s.N, s.K,
                               s.C);
  DeviceBuffer<float> d_dye(dye.size()), d_dw(P), d_dout(dout), d_ye(ye), d_w(w);
  DeviceBuffer<int> d_pos(srt.pos);
  tinyds::cuda::moe_combine_backward(d_dye.get(), d_dw.get(), d_dout.get(), d_ye.get(), d_w.get(), d_pos.get(), s.N,
                                     s.K, s.C);
  return {{{"dye", d_dye.download(), dye}, {"dtopk_w", d_dw.download(), dw}}};
}

}  // namespace

TINYDS_KERNEL_CASES(moe_dispatch) {
  const std::vector<DispatchShape> shapes = {
      {0, 2, 4, 7, 4},        // empty batch
      {1, 1, 4, 33, 4},       // one token, top-1
      {7, 2, 16, 33, 16},     // most experts get 0 or 1 pair
      {65, 4, 16, 65, 16},    // P = 260: slices cross the 128-pair chunks
      {257, 6, 64, 17, 64},   // V3-like ratio of K to E, P = 1542
      {129, 4, 16, 33, 5},    // skewed: 516 pairs on 5 experts, 11 experts empty
      {33, 2, 300, 7, 300},   // E > 128: the offsets scan runs in several chunks
  };
  // Sort: integers, so exact (an index off by one misses by 1). Gather/gather backward: copies and the CPU's
  // additions in the CPU's order (k = 0, 1, ...): bit-identical. Combine: the CPU's products and sums in k order
  // (bits agree in emulation); nvcc fuses o + w*y into one FMA, changing each of the K steps by <= 1 ulp of a
  // value <= K: atol 1e-6 rtol 1e-6. Combine backward: dye is one product (exact); dtopk_w sums in double in
  // another order (32 lane partials) and rounds once to float: <= 1 ulp.
  for (const DispatchShape& s : shapes) {
    const std::string n = s.name();
    add({"moe_dispatch_sort", 1, n, 0.0, 0.0, "integer outputs: exact", [s] { return sort_case(s); }});
    add({"moe_gather_forward", 1, n, 0.0, 0.0, "a copy: exact", [s] { return gather_forward_case(s); }});
    add({"moe_gather_backward", 1, n, 0.0, 0.0, "the CPU's fp32 additions in the CPU's k order: bit-identical",
         [s] { return gather_backward_case(s); }});
    add({"moe_combine_forward", 1, n, 1e-6, 1e-6, "CPU's products and sums in k order; a GPU FMA moves <= K ulps",
         [s] { return combine_forward_case(s); }});
    add({"moe_combine_backward", 1, n, 1e-6, 1e-6, "dye exact; dtopk_w a double sum in another order: <= 1 ulp",
         [s] { return combine_backward_case(s); }});
  }
}
