// tests/kernels/kl_cases.cpp — kernel table rows for kernels/kl.cu against tinyds/posttrain/losses/kl.h.
// Shapes: n tokens; lp, lp_ref in [-3, 0] (log-probs), so x = lp_ref - lp in [-3, 3].
#include "kernels/kl.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/posttrain/losses/kl.h"

namespace {

using tinyds::KLEstimator;
using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;

CaseResult kl_case(long n, KLEstimator k, bool backward) {
  const std::vector<float> lp = random_floats(n, 1, -3.0f, 0.0f), lp_ref = random_floats(n, 2, -3.0f, 0.0f);
  const std::vector<float> dkl = random_floats(n, 3);
  std::vector<float> ref(n);
  DeviceBuffer<float> d_y(n), d_lp(lp), d_lp_ref(lp_ref), d_dkl(dkl);
  if (backward) {
    tinyds::kl_backward(ref.data(), dkl.data(), lp.data(), lp_ref.data(), n, k);
    tinyds::cuda::kl_backward(d_y.get(), d_dkl.get(), d_lp.get(), d_lp_ref.get(), n, k);
  } else {
    tinyds::kl_forward(ref.data(), lp.data(), lp_ref.data(), n, k);
    tinyds::cuda::kl_forward(d_y.get(), d_lp.get(), d_lp_ref.get(), n, k);
  }
  return {{{backward ? "dlp" : "kl", d_y.download(), ref}}};
}

}  // namespace

TINYDS_KERNEL_CASES(kl) {
  // The CPU evaluates in double and rounds once; the kernel in float. expm1f(x) - x (k3) and its derivative carry
  // a few ulp of exp(3) ~ 20 absolute; k1, k2 a few ulp of x.
  const char* why = "float vs double (rounded once): a few ulp of exp(|x|) <= 20";
  for (long n : {0L, 1L, 7L, 257L, 4096L + 33}) {
    for (KLEstimator k : {KLEstimator::k1, KLEstimator::k2, KLEstimator::k3}) {
      const std::string shape = "n=" + std::to_string(n) + " " + tinyds::kl_estimator_name(k);
      add({"kl_forward", 1, shape, 5e-6, 1e-6, why, [=] { return kl_case(n, k, false); }});
      add({"kl_backward", 1, shape, 5e-6, 1e-6, why, [=] { return kl_case(n, k, true); }});
    }
  }
}
