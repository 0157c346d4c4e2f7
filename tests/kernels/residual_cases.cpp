// tests/kernels/residual_cases.cpp — kernel table rows for kernels/residual.cu against tinyds/ops/residual.h.
// Tolerance 0: one fp32 addition, multiplication (or a copy) per element, the same operation on both sides, so the bits agree.
#include "kernels/residual.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/ops/residual.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;

CaseResult residual_forward_case(long n) {
  const std::vector<float> a = random_floats(n, 1), b = random_floats(n, 2);
  std::vector<float> ref(n);
  tinyds::residual_forward(ref.data(), a.data(), b.data(), n);
  DeviceBuffer<float> d_out(n), d_a(a), d_b(b);
  tinyds::cuda::residual_forward(d_out.get(), d_a.get(), d_b.get(), n);
  return {{{"out", d_out.download(), ref}}};
}

CaseResult residual_backward_case(long n) {
  const std::vector<float> dout = random_floats(n, 3);
  std::vector<float> da(n), db(n);
  tinyds::residual_backward(da.data(), db.data(), dout.data(), n);
  DeviceBuffer<float> d_da(n), d_db(n), d_dout(dout);
  tinyds::cuda::residual_backward(d_da.get(), d_db.get(), d_dout.get(), n);
  return {{{"da", d_da.download(), da}, {"db", d_db.download(), db}}};
}

CaseResult add_inplace_case(long n) {
  std::vector<float> acc = random_floats(n, 4);
  const std::vector<float> x = random_floats(n, 5);
  DeviceBuffer<float> d_acc(acc), d_x(x);
  tinyds::add_inplace(acc.data(), x.data(), n);
  tinyds::cuda::add_inplace(d_acc.get(), d_x.get(), n);
  return {{{"acc", d_acc.download(), acc}}};
}

CaseResult scale_inplace_case(long n) {
  std::vector<float> x = random_floats(n, 6);
  DeviceBuffer<float> d_x(x);
  tinyds::scale_inplace(x.data(), 0.37f, n);
  tinyds::cuda::scale_inplace(d_x.get(), 0.37f, n);
  return {{{"x", d_x.download(), x}}};
}

}  // namespace

TINYDS_KERNEL_CASES(residual) {
  const char* why = "one fp32 add per element on both sides: bit-identical";
  for (long n : {0L, 1L, 7L, 257L, 4096L + 33}) {
    const std::string shape = "n=" + std::to_string(n);
    add({"residual_forward", 1, shape, 0.0, 0.0, why, [n] { return residual_forward_case(n); }});
    add({"residual_backward", 1, shape, 0.0, 0.0, why, [n] { return residual_backward_case(n); }});
    add({"add_inplace", 1, shape, 0.0, 0.0, why, [n] { return add_inplace_case(n); }});
    add({"scale_inplace", 1, shape, 0.0, 0.0, "one fp32 multiply per element on both sides: bit-identical",
         [n] { return scale_inplace_case(n); }});
  }
}
