// tests/kernels/gae_cases.cpp — kernel table rows for kernels/gae.cu against tinyds/posttrain/losses/gae.h.
// Shapes: B sequences, T positions. Masks as a rollout makes them: prompt positions 0, then the completion 1s,
// then padding 0s, with a different completion start and length per row.
#include "kernels/gae.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/posttrain/losses/gae.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;
using tinyds::test::random_ints;

std::vector<float> completion_mask(int B, int T, uint64_t seed) {
  const std::vector<int> start = random_ints(B, seed, 0, T - 1), len = random_ints(B, seed + 1, 1, T);
  std::vector<float> mask(static_cast<size_t>(B) * T, 0.0f);
  for (int i = 0; i < B; i++)
    for (int t = start[i]; t < T && t < start[i] + len[i]; t++) mask[static_cast<size_t>(i) * T + t] = 1.0f;
  return mask;
}

CaseResult compute_gae_case(int B, int T, double gamma, double lam) {
  const size_t n = static_cast<size_t>(B) * T;
  const std::vector<float> rewards = random_floats(n, 1, -0.2f, 0.2f), values = random_floats(n, 2);
  const std::vector<float> mask = completion_mask(B, T, 3);
  std::vector<float> adv(n), ret(n);
  tinyds::compute_gae(adv.data(), ret.data(), rewards.data(), values.data(), mask.data(), B, T, gamma, lam);
  DeviceBuffer<float> d_adv(n), d_ret(n), d_rewards(rewards), d_values(values), d_mask(mask);
  tinyds::cuda::compute_gae(d_adv.get(), d_ret.get(), d_rewards.get(), d_values.get(), d_mask.get(), B, T, gamma, lam);
  return {{{"advantages", d_adv.download(), adv}, {"returns", d_ret.download(), ret}}};
}

CaseResult masked_whiten_case(int B, int T, bool shift_mean) {
  const size_t n = static_cast<size_t>(B) * T;
  const std::vector<float> x = random_floats(n, 4, -3.0f, 5.0f);
  std::vector<float> mask = completion_mask(B, T, 5);
  mask[0] = mask[n - 1] = 1.0f;  // at least 2 unmasked positions (the unbiased variance needs them)
  std::vector<float> out(n);
  tinyds::masked_whiten(out.data(), x.data(), mask.data(), static_cast<long>(n), shift_mean);
  DeviceBuffer<float> d_out(n), d_x(x), d_mask(mask);
  tinyds::cuda::masked_whiten(d_out.get(), d_x.get(), d_mask.get(), static_cast<long>(n), shift_mean);
  return {{{"out", d_out.download(), out}}};
}

}  // namespace

TINYDS_KERNEL_CASES(gae) {
  // The scan in float vs double: each step adds one rounding of |A| <= ~5, and gamma lam = 0.95 damps old ones, so
  // the error stays at ~20 ulp of 5 at most.
  const char* gae = "float recursion vs double: ~20 ulp of |A| <= 5 (errors decay by gamma lam per step)";
  const char* whiten = "float tree sums (mean, squared deviations) vs double: a few ulp of |out| <= 4";
  for (auto [B, T] : {std::pair{1, 1}, {4, 7}, {16, 65}, {3, 257}}) {
    const std::string shape = "B=" + std::to_string(B) + " T=" + std::to_string(T);
    add({"compute_gae", 1, shape + " gamma=1 lam=0.95", 1e-5, 1e-5, gae, [=] { return compute_gae_case(B, T, 1.0, 0.95); }});
    add({"compute_gae", 1, shape + " gamma=0.9 lam=1", 1e-5, 1e-5, gae, [=] { return compute_gae_case(B, T, 0.9, 1.0); }});
    if (B * T >= 2) {
      add({"masked_whiten", 1, shape, 2e-6, 1e-5, whiten, [=] { return masked_whiten_case(B, T, true); }});
      add({"masked_whiten", 1, shape + " keep mean", 2e-6, 1e-5, whiten, [=] { return masked_whiten_case(B, T, false); }});
    }
  }
}
