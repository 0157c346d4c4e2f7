// tests/kernels/adamw_cases.cpp — kernel table rows for kernels/adamw.cu against tinyds/ops/adamw.h.
// Shapes: n parameters. AdamW runs three steps (t = 1, 2, 3) so the bias corrections change between steps.
#include <cmath>

#include "kernels/adamw.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/ops/adamw.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;

CaseResult adamw_case(long n) {
  std::vector<float> p = random_floats(n, 1), m(n, 0.0f), v(n, 0.0f);
  DeviceBuffer<float> d_p(p), d_m(m), d_v(v), d_g(n);
  for (int t = 1; t <= 3; t++) {
    const std::vector<float> g = random_floats(n, 10 + t);
    d_g.upload(g);
    tinyds::adamw_update(p.data(), g.data(), m.data(), v.data(), n, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, t);
    tinyds::cuda::adamw_update(d_p.get(), d_g.get(), d_m.get(), d_v.get(), n, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, t);
  }
  return {{{"params", d_p.download(), p}, {"m", d_m.download(), m}, {"v", d_v.download(), v}}};
}

CaseResult global_norm_case(long n, int version) {
  const std::vector<float> g = random_floats(n, 2);
  const float ref = static_cast<float>(tinyds::global_norm(g.data(), n));
  DeviceBuffer<float> d_g(g), d_norm(1);
  tinyds::cuda::global_norm(d_norm.get(), d_g.get(), n, version);
  return {{{"norm", d_norm.download(), {ref}}}};
}

// max_norm as a fraction of the true norm: < 1 clips, > 1 does not.
CaseResult clip_case(long n, double max_norm_fraction) {
  std::vector<float> g = random_floats(n, 3);
  const double norm = tinyds::global_norm(g.data(), n);
  const float max_norm = static_cast<float>(max_norm_fraction * norm);
  DeviceBuffer<float> d_g(g), d_norm(1), d_scale(1);
  const float ref_scale = static_cast<float>(tinyds::clip_grad_norm(g.data(), n, norm, max_norm));
  tinyds::cuda::global_norm(d_norm.get(), d_g.get(), n);
  tinyds::cuda::clip_grad_norm(d_g.get(), n, d_norm.get(), max_norm, d_scale.get());
  return {{{"g", d_g.download(), g}, {"scale", d_scale.download(), {ref_scale}}}};
}

}  // namespace

TINYDS_KERNEL_CASES(adamw) {
  // The same float formula per element on both sides; sqrtf and division are correctly rounded, so only an fma
  // contraction can differ: a few ulp per step, over three steps, of |p| <= 1.1, |m| <= 1, v <= 1.
  const char* adam = "same float formula; fma contraction: a few ulp of values <= 1.1 over 3 steps";
  // Both accumulate in double and round once to float; v1 rounds each block's partial to float before its
  // atomicAdd (positive terms: no cancellation, <= 1 ulp per partial).
  const char* norm = "double sums rounded to float (v1: + one float rounding per block partial)";
  const char* clip = "scale = max_norm / norm from a norm equal within 2 ulp: a few ulp of |g| <= 1";
  for (long n : {0L, 1L, 7L, 1000L, 100000L + 33}) {
    const std::string shape = "n=" + std::to_string(n);
    add({"adamw_update", 1, shape, 5e-7, 1e-6, adam, [n] { return adamw_case(n); }});
    add({"global_norm", 1, shape, 0.0, 1e-6, norm, [n] { return global_norm_case(n, 1); }});
    add({"global_norm", 2, shape, 0.0, 1e-6, norm, [n] { return global_norm_case(n, 2); }});
    if (n > 0) {
      add({"clip_grad_norm", 1, shape + " clipped", 0.0, 1e-6, clip, [n] { return clip_case(n, 0.5); }});
      add({"clip_grad_norm", 1, shape + " not clipped", 0.0, 0.0, "g untouched, scale exactly 1",
           [n] { return clip_case(n, 2.0); }});
    }
  }
}
