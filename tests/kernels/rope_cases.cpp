// tests/kernels/rope_cases.cpp — kernel table rows for kernels/rope.cu against tinyds/ops/rope.h.
// Shapes: B batch, T time, H heads, R rotated dim (even); pos0 the first position.
#include "kernels/rope.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/ops/rope.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;

struct RopeShape {
  int B, T, H, R, pos0;
  std::string name() const {
    return "B=" + std::to_string(B) + " T=" + std::to_string(T) + " H=" + std::to_string(H) + " R=" +
           std::to_string(R) + " pos0=" + std::to_string(pos0);
  }
};

// backward = false: rope_forward; true: rope_backward. in_place: the kernel writes over its input buffer.
CaseResult rope_case(const RopeShape& s, bool backward, bool in_place) {
  const float theta = 10000.0f;
  const size_t n = static_cast<size_t>(s.B) * s.T * s.H * s.R;
  const std::vector<float> x = random_floats(n, backward ? 2 : 1);
  std::vector<float> ref(n);
  if (backward) tinyds::rope_backward(ref.data(), x.data(), s.B, s.T, s.H, s.R, s.pos0, theta);
  else tinyds::rope_forward(ref.data(), x.data(), s.B, s.T, s.H, s.R, s.pos0, theta);
  DeviceBuffer<float> d_x(x), d_y(n);
  float* y = in_place ? d_x.get() : d_y.get();
  if (backward) tinyds::cuda::rope_backward(y, d_x.get(), s.B, s.T, s.H, s.R, s.pos0, theta);
  else tinyds::cuda::rope_forward(y, d_x.get(), s.B, s.T, s.H, s.R, s.pos0, theta);
  return {{{backward ? "dinp" : "out", in_place ? d_x.download() : d_y.download(), ref}}};
}

}  // namespace

TINYDS_KERNEL_CASES(rope) {
  // Both sides take cos/sin of the same double angle rounded to float, then two float products and a sum per
  // output: only the compiler's choice to fuse a product into an fma can differ (1-2 ulp of values <= sqrt(2)).
  const char* why = "same double angle; fma contraction may differ by 1-2 ulp of |out| <= 1.5";
  for (const RopeShape& s : {RopeShape{0, 3, 2, 8, 0}, RopeShape{1, 1, 1, 2, 0}, RopeShape{2, 7, 3, 16, 0},
                             RopeShape{1, 33, 2, 64, 5}, RopeShape{2, 5, 4, 32, 4091}}) {
    add({"rope_forward", 1, s.name(), 5e-7, 0.0, why, [=] { return rope_case(s, false, false); }});
    add({"rope_backward", 1, s.name(), 5e-7, 0.0, why, [=] { return rope_case(s, true, false); }});
  }
  const RopeShape s{2, 9, 3, 24, 17};
  add({"rope_forward", 1, s.name() + " in place", 5e-7, 0.0, why, [=] { return rope_case(s, false, true); }});
  add({"rope_backward", 1, s.name() + " in place", 5e-7, 0.0, why, [=] { return rope_case(s, true, true); }});
}
