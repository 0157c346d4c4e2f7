// tests/kernels/logprobs_cases.cpp — kernel table rows for kernels/logprobs.cu against tinyds/posttrain/losses/logprobs.h.
// Shapes: N rows, V vocab; about one target in five is -1 (masked); temperatures 1 and 0.7.
#include "kernels/logprobs.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/posttrain/losses/logprobs.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;
using tinyds::test::random_ints;

struct LogprobInputs {
  std::vector<float> logits, grad;  // logits (N, V), the upstream gradient dlp or dentropy (N)
  std::vector<int> targets;         // (N), ~1 in 5 is -1
};
LogprobInputs logprob_inputs(int N, int V, uint64_t seed) {
  LogprobInputs in{random_floats(static_cast<size_t>(N) * V, seed, -6.0f, 6.0f), random_floats(N, seed + 1),
                   random_ints(N, seed + 2, -(V / 4 + 1), V - 1)};
  for (int& t : in.targets) t = t < 0 ? -1 : t;
  return in;
}

// What: 0 logprobs_forward, 1 logprobs_backward, 2 entropy_forward, 3 entropy_backward.
CaseResult logprobs_case(int N, int V, double T, int what) {
  const LogprobInputs in = logprob_inputs(N, V, 10 + what);
  const size_t out_n = what % 2 == 0 ? static_cast<size_t>(N) : static_cast<size_t>(N) * V;
  std::vector<float> ref(out_n);
  DeviceBuffer<float> d_y(out_n), d_logits(in.logits), d_grad(in.grad);
  DeviceBuffer<int> d_targets(in.targets);
  const int* tg = in.targets.data();
  switch (what) {
    case 0:
      tinyds::logprobs_forward(ref.data(), in.logits.data(), tg, N, V, T);
      tinyds::cuda::logprobs_forward(d_y.get(), d_logits.get(), d_targets.get(), N, V, T);
      return {{{"lp", d_y.download(), ref}}};
    case 1:
      tinyds::logprobs_backward(ref.data(), in.grad.data(), in.logits.data(), tg, N, V, T);
      tinyds::cuda::logprobs_backward(d_y.get(), d_grad.get(), d_logits.get(), d_targets.get(), N, V, T);
      return {{{"dlogits", d_y.download(), ref}}};
    case 2:
      tinyds::entropy_forward(ref.data(), in.logits.data(), tg, N, V, T);
      tinyds::cuda::entropy_forward(d_y.get(), d_logits.get(), d_targets.get(), N, V, T);
      return {{{"entropy", d_y.download(), ref}}};
    default:
      tinyds::entropy_backward(ref.data(), in.grad.data(), in.logits.data(), tg, N, V, T);
      tinyds::cuda::entropy_backward(d_y.get(), d_grad.get(), d_logits.get(), d_targets.get(), N, V, T);
      return {{{"dlogits", d_y.download(), ref}}};
  }
}

}  // namespace

TINYDS_KERNEL_CASES(logprobs) {
  // The CPU works in double (row_softmax.h), the kernel in float: lse ~ 6 / 0.7 + log V <= 16 carries a few ulp
  // (~2e-6); lp = z - lse and H inherit that absolutely. dlogits = g (onehot - p) / T with p = exp(z - lse): the
  // lse error becomes a relative error ~2e-6 of p, which is absolute in 1 - p and in log p + H (cancellations).
  const char* fwd = "float lse (a few ulp of <= 16) vs the CPU's double row";
  const char* bwd = "p = exp(z - lse) with lse off by a few ulp: ~2e-6 |g| / T, absolute where 1 - p cancels";
  const char* names[] = {"logprobs_forward", "logprobs_backward", "entropy_forward", "entropy_backward"};
  for (auto [N, V] : {std::pair{0, 7}, {1, 1}, {1, 33}, {7, 65}, {33, 257}, {5, 1000}}) {
    for (double T : {1.0, 0.7}) {
      const std::string shape = "N=" + std::to_string(N) + " V=" + std::to_string(V) + (T == 1.0 ? " T=1" : " T=0.7");
      for (int what = 0; what < 4; what++) {
        const bool forward = what % 2 == 0;
        add({names[what], 1, shape, forward ? 1e-5 : 5e-6, forward ? 1e-6 : 1e-5, forward ? fwd : bwd,
             [=] { return logprobs_case(N, V, T, what); }});
      }
    }
  }
}
