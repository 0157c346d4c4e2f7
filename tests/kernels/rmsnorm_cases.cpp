// tests/kernels/rmsnorm_cases.cpp — kernel table rows for kernels/rmsnorm.cu against tinyds/ops/rmsnorm.h.
//
// Tolerances. The kernels sum in fp32, the CPU reference in double.
//  - forward: rstd comes from a sum of C squares (all >= 0). A float sum of same-sign terms is within
//    (C-1)*2^-24 relative of the exact sum, 6.1e-5 for C = 1024 (the widest row here), and rstd = (.)^(-1/2)
//    halves that; rsqrtf adds <= 2 ulp, out = x*r*w two roundings more. rtol 5e-5 covers the worst case;
//    atol 1e-6 covers outputs near zero, whose relative error is that of the larger factors.
//  - backward: sum_c g w x (over C) and dweight's sum over rows (over N) have terms of both signs. Random-sign
//    rounding errors grow like sqrt(n) 2^-24 sqrt(sum t^2), about 1e-6 here; the worst-case bound
//    (n-1) 2^-24 sum|t| (about 1e-3 for N = 257) would be too loose to catch a wrong index. atol 1e-4, rtol 1e-4
//    sit between: ~15x above the largest error measured (6.7e-6), far below one missing or doubled term (|t| of
//    order 0.1 to 1).
#include "kernels/rmsnorm.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/ops/rmsnorm.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;

constexpr float kEps = 1e-5f;

CaseResult rmsnorm_forward_case(int version, int N, int C) {
  const std::vector<float> inp = random_floats(static_cast<size_t>(N) * C, 1);
  const std::vector<float> weight = random_floats(C, 2, 0.5f, 1.5f);
  std::vector<float> out(static_cast<size_t>(N) * C), rstd(N);
  tinyds::rmsnorm_forward(out.data(), rstd.data(), inp.data(), weight.data(), N, C, kEps);
  DeviceBuffer<float> d_out(out.size()), d_rstd(N), d_inp(inp), d_weight(weight);
  tinyds::cuda::rmsnorm_forward(d_out.get(), d_rstd.get(), d_inp.get(), d_weight.get(), N, C, kEps, version);
  return {{{"out", d_out.download(), out}, {"rstd", d_rstd.download(), rstd}}};
}

CaseResult rmsnorm_backward_case(int version, int N, int C) {
  const std::vector<float> inp = random_floats(static_cast<size_t>(N) * C, 3);
  const std::vector<float> weight = random_floats(C, 4, 0.5f, 1.5f);
  const std::vector<float> dout = random_floats(static_cast<size_t>(N) * C, 5);
  std::vector<float> out(inp.size()), rstd(N);
  tinyds::rmsnorm_forward(out.data(), rstd.data(), inp.data(), weight.data(), N, C, kEps);
  // dweight starts non-zero: the kernels must accumulate (+=) into it, not overwrite it.
  std::vector<float> dweight = random_floats(C, 6);
  std::vector<float> dinp(inp.size());
  DeviceBuffer<float> d_dinp(dinp.size()), d_dweight(dweight), d_dout(dout), d_inp(inp), d_weight(weight),
      d_rstd(rstd);
  tinyds::rmsnorm_backward(dinp.data(), dweight.data(), dout.data(), inp.data(), weight.data(), rstd.data(), N, C);
  tinyds::cuda::rmsnorm_backward(d_dinp.get(), d_dweight.get(), d_dout.get(), d_inp.get(), d_weight.get(),
                                 d_rstd.get(), N, C, version);
  return {{{"dinp", d_dinp.download(), dinp}, {"dweight", d_dweight.download(), dweight}}};
}

}  // namespace

TINYDS_KERNEL_CASES(rmsnorm) {
  const std::vector<std::pair<int, int>> shapes = {{0, 33}, {1, 1}, {1, 257}, {7, 33}, {65, 768}, {257, 65},
                                                   {33, 1024}};
  for (int version : {0, 1, 2, 3}) {
    for (auto [N, C] : shapes) {
      const std::string shape = "N=" + std::to_string(N) + " C=" + std::to_string(C);
      add({"rmsnorm_forward", version, shape, 1e-6, 5e-5, "fp32 sum of C squares vs double (header)",
           [=] { return rmsnorm_forward_case(version, N, C); }});
      add({"rmsnorm_backward", version, shape, 1e-4, 1e-4, "fp32 mixed-sign sums over C and N vs double (header)",
           [=] { return rmsnorm_backward_case(version, N, C); }});
    }
  }
}
