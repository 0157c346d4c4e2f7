// tests/kernels/swiglu_cases.cpp — kernel table rows for kernels/swiglu.cu against tinyds/ops/swiglu.h.
// Shapes: n elements. a spans [-12, 12] so the sigmoid is tested near 0, near 1 and in between.
#include "kernels/swiglu.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/ops/swiglu.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;

CaseResult swiglu_forward_case(long n) {
  const std::vector<float> a = random_floats(n, 1, -12.0f, 12.0f), b = random_floats(n, 2, -2.0f, 2.0f);
  std::vector<float> ref(n);
  tinyds::swiglu_forward(ref.data(), a.data(), b.data(), n);
  DeviceBuffer<float> d_out(n), d_a(a), d_b(b);
  tinyds::cuda::swiglu_forward(d_out.get(), d_a.get(), d_b.get(), n);
  return {{{"out", d_out.download(), ref}}};
}

CaseResult swiglu_backward_case(long n) {
  const std::vector<float> a = random_floats(n, 3, -12.0f, 12.0f), b = random_floats(n, 4, -2.0f, 2.0f);
  const std::vector<float> dout = random_floats(n, 5);
  std::vector<float> da(n), db(n);
  tinyds::swiglu_backward(da.data(), db.data(), dout.data(), a.data(), b.data(), n);
  DeviceBuffer<float> d_da(n), d_db(n), d_dout(dout), d_a(a), d_b(b);
  tinyds::cuda::swiglu_backward(d_da.get(), d_db.get(), d_dout.get(), d_a.get(), d_b.get(), n);
  return {{{"da", d_da.download(), da}, {"db", d_db.download(), db}}};
}

}  // namespace

TINYDS_KERNEL_CASES(swiglu) {
  // The CPU's vectorised exp (Eigen packet exp) and expf may differ by a few ulp; the rest is the same float formula.
  const char* why = "expf vs Eigen's packet exp: a few ulp; values |out| <= 24";
  for (long n : {0L, 1L, 7L, 257L, 4096L + 33}) {
    const std::string shape = "n=" + std::to_string(n);
    add({"swiglu_forward", 1, shape, 1e-6, 1e-6, why, [n] { return swiglu_forward_case(n); }});
    add({"swiglu_backward", 1, shape, 1e-6, 1e-6, why, [n] { return swiglu_backward_case(n); }});
  }
}
