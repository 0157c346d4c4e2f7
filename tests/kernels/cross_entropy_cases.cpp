// tests/kernels/cross_entropy_cases.cpp — kernel table rows for kernels/cross_entropy.cu against
// tinyds/ops/cross_entropy.h. Shapes: N rows, V vocab; about one target in five is -1 (masked).
#include "kernels/cross_entropy.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/ops/cross_entropy.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;
using tinyds::test::random_ints;

// Targets in [-1, V): with the draw range widened by V/4 below 0, ~1 in 5 rows is masked (every negative is -1).
std::vector<int> masked_targets(int N, int V, uint64_t seed) {
  std::vector<int> t = random_ints(N, seed, -(V / 4 + 1), V - 1);
  for (int& x : t) x = x < 0 ? -1 : x;
  return t;
}

CaseResult cross_entropy_forward_case(int N, int V) {
  const std::vector<float> logits = random_floats(static_cast<size_t>(N) * V, 1, -6.0f, 6.0f);
  const std::vector<int> targets = masked_targets(N, V, 2);
  std::vector<float> losses(N), lse(N);
  tinyds::cross_entropy_forward(losses.data(), lse.data(), logits.data(), targets.data(), N, V);
  DeviceBuffer<float> d_losses(N), d_lse(N), d_logits(logits);
  DeviceBuffer<int> d_targets(targets);
  tinyds::cuda::cross_entropy_forward(d_losses.get(), d_lse.get(), d_logits.get(), d_targets.get(), N, V);
  return {{{"losses", d_losses.download(), losses}, {"lse", d_lse.download(), lse}}};
}

CaseResult cross_entropy_backward_case(int N, int V) {
  const std::vector<float> logits = random_floats(static_cast<size_t>(N) * V, 3, -6.0f, 6.0f);
  const std::vector<int> targets = masked_targets(N, V, 4);
  const std::vector<float> dlosses = random_floats(N, 5, 0.0f, 1.0f);
  std::vector<float> losses(N), lse(N), dlogits(static_cast<size_t>(N) * V);
  // Both sides get the CPU's lse, so this row tests the backward alone.
  tinyds::cross_entropy_forward(losses.data(), lse.data(), logits.data(), targets.data(), N, V);
  tinyds::cross_entropy_backward(dlogits.data(), dlosses.data(), logits.data(), lse.data(), targets.data(), N, V);
  DeviceBuffer<float> d_dlogits(dlogits.size()), d_dlosses(dlosses), d_logits(logits), d_lse(lse);
  DeviceBuffer<int> d_targets(targets);
  tinyds::cuda::cross_entropy_backward(d_dlogits.get(), d_dlosses.get(), d_logits.get(), d_lse.get(),
                                       d_targets.get(), N, V);
  return {{{"dlogits", d_dlogits.download(), dlogits}}};
}

}  // namespace

TINYDS_KERNEL_CASES(cross_entropy) {
  // Forward: the CPU sums the V exps in double, the kernel in float (a block tree, ~log2 V roundings of 6e-8
  // relative); lse ~ 6 + log V <= 14, so its error is a few ulp of 14 (~1e-6).
  const char* fwd = "float tree sum of V exps vs the CPU's double sum: a few ulp of lse <= 14";
  // Backward: the same float exp(x - lse) on both sides, up to the ulp-level difference of expf and Eigen's exp.
  const char* bwd = "expf vs Eigen's packet exp of the same argument: a few ulp of p <= 1 (absolute at p - 1)";
  for (auto [N, V] : {std::pair{0, 7}, {1, 1}, {1, 33}, {7, 65}, {33, 257}, {5, 1000}}) {
    const std::string shape = "N=" + std::to_string(N) + " V=" + std::to_string(V);
    add({"cross_entropy_forward", 1, shape, 4e-6, 1e-6, fwd, [=] { return cross_entropy_forward_case(N, V); }});
    add({"cross_entropy_backward", 1, shape, 5e-7, 1e-5, bwd, [=] { return cross_entropy_backward_case(N, V); }});
  }
}
