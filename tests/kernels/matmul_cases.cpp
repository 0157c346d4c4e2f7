// tests/kernels/matmul_cases.cpp — kernel table rows for kernels/matmul.cu against tinyds/ops/matmul.h.
//
// Tolerance: each output is a dot product of K terms (K = IC forward, OC for dinp, N for dweight) computed in fp32 by
// both sides but in different orders (Eigen's blocked SIMD sums vs the kernels' sequential or tiled ones). Two fp32
// sums of the same K terms differ by at most ~2 (K-1) 2^-24 sum|terms|; with inputs in [-1, 1], |terms| < 1 and
// K <= 257 here: <= 3e-5 worst case. atol 3e-5 with rtol 1e-5 covers it.
#include "kernels/matmul.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/ops/matmul.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;

CaseResult matmul_forward_case(int version, int N, int IC, int OC, bool with_bias) {
  const std::vector<float> inp = random_floats(static_cast<size_t>(N) * IC, 1);
  const std::vector<float> weight = random_floats(static_cast<size_t>(OC) * IC, 2);
  const std::vector<float> bias = random_floats(OC, 3);
  std::vector<float> out(static_cast<size_t>(N) * OC);
  // The CPU op has no bias (DeepSeek-V3's linear layers have none); the kernel's optional bias is added here by
  // its definition, out[n, o] += bias[o].
  tinyds::matmul_forward(out.data(), inp.data(), weight.data(), N, IC, OC);
  if (with_bias)
    for (int n = 0; n < N; n++)
      for (int o = 0; o < OC; o++) out[static_cast<size_t>(n) * OC + o] += bias[o];
  DeviceBuffer<float> d_out(out.size()), d_inp(inp), d_weight(weight), d_bias(bias);
  tinyds::cuda::matmul_forward(d_out.get(), d_inp.get(), d_weight.get(), with_bias ? d_bias.get() : nullptr, N, IC,
                               OC, version);
  return {{{"out", d_out.download(), out}}};
}

CaseResult matmul_backward_case(int version, int N, int IC, int OC, bool with_bias) {
  const std::vector<float> inp = random_floats(static_cast<size_t>(N) * IC, 4);
  const std::vector<float> weight = random_floats(static_cast<size_t>(OC) * IC, 5);
  const std::vector<float> dout = random_floats(static_cast<size_t>(N) * OC, 6);
  // Parameter gradients start non-zero: the kernels must accumulate (+=).
  std::vector<float> dweight = random_floats(weight.size(), 7), dbias = random_floats(OC, 8);
  std::vector<float> dinp(inp.size());
  DeviceBuffer<float> d_dinp(dinp.size()), d_dweight(dweight), d_dbias(dbias), d_dout(dout), d_inp(inp),
      d_weight(weight);
  tinyds::matmul_backward(dinp.data(), dweight.data(), dout.data(), inp.data(), weight.data(), N, IC, OC);
  if (with_bias)  // dbias[o] += sum_n dout[n, o], by its definition (the CPU op has no bias)
    for (int n = 0; n < N; n++)
      for (int o = 0; o < OC; o++) dbias[o] += dout[static_cast<size_t>(n) * OC + o];
  tinyds::cuda::matmul_backward(d_dinp.get(), d_dweight.get(), with_bias ? d_dbias.get() : nullptr, d_dout.get(),
                                d_inp.get(), d_weight.get(), N, IC, OC, version);
  return {{{"dinp", d_dinp.download(), dinp}, {"dweight", d_dweight.download(), dweight},
           {"dbias", d_dbias.download(), dbias}}};
}

}  // namespace

TINYDS_KERNEL_CASES(matmul) {
  struct Shape {
    int N, IC, OC;
    bool bias;
  };
  const std::vector<Shape> shapes = {{0, 33, 17, true}, {1, 1, 1, true},     {7, 33, 65, true},
                                     {65, 257, 33, false}, {64, 64, 128, true}, {130, 96, 257, true}};
  std::vector<int> versions = {0, 1, 2, 3};
  if (TINYDS_CUDA_NATIVE) versions.push_back(4);  // cuBLAS
  const char* why = "fp32 dot products of <= 257 terms in another order than Eigen's (header)";
  for (int version : versions) {
    for (const Shape& s : shapes) {
      const std::string shape = "N=" + std::to_string(s.N) + " IC=" + std::to_string(s.IC) +
                                " OC=" + std::to_string(s.OC) + (s.bias ? " bias" : "");
      add({"matmul_forward", version, shape, 3e-5, 1e-5, why,
           [=] { return matmul_forward_case(version, s.N, s.IC, s.OC, s.bias); }});
      add({"matmul_backward", version, shape, 3e-5, 1e-5, why,
           [=] { return matmul_backward_case(version, s.N, s.IC, s.OC, s.bias); }});
    }
  }
}
