// tests/kernels/embedding_cases.cpp — kernel table rows for kernels/embedding.cu against tinyds/ops/embedding.h.
// Shapes: N rows, C width, V vocab. V is small (11) so that many rows share a token and the backward's repeated-token
// accumulation (the atomics' race, the column owner's order) is exercised.
#include "kernels/embedding.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/ops/embedding.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;
using tinyds::test::random_ints;

constexpr int kVocab = 11;

CaseResult embedding_forward_case(int N, int C, int version) {
  const std::vector<float> wte = random_floats(static_cast<size_t>(kVocab) * C, 1);
  const std::vector<int> tokens = random_ints(N, 2, 0, kVocab - 1);
  std::vector<float> ref(static_cast<size_t>(N) * C);
  tinyds::embedding_forward(ref.data(), tokens.data(), wte.data(), N, C);
  DeviceBuffer<float> d_out(ref.size()), d_wte(wte);
  DeviceBuffer<int> d_tokens(tokens);
  tinyds::cuda::embedding_forward(d_out.get(), d_tokens.get(), d_wte.get(), N, C, version);
  return {{{"out", d_out.download(), ref}}};
}

CaseResult embedding_backward_case(int N, int C, int version) {
  // dwte starts from random values on both sides: the op accumulates (+=), and a kernel that overwrote would fail.
  std::vector<float> dwte = random_floats(static_cast<size_t>(kVocab) * C, 3);
  const std::vector<float> dout = random_floats(static_cast<size_t>(N) * C, 4);
  const std::vector<int> tokens = random_ints(N, 5, 0, kVocab - 1);
  DeviceBuffer<float> d_dwte(dwte), d_dout(dout);
  DeviceBuffer<int> d_tokens(tokens);
  tinyds::embedding_backward(dwte.data(), dout.data(), tokens.data(), N, C);
  tinyds::cuda::embedding_backward(d_dwte.get(), d_dout.get(), d_tokens.get(), N, C, version);
  return {{{"dwte", d_dwte.download(), dwte}}};
}

}  // namespace

TINYDS_KERNEL_CASES(embedding) {
  const char* exact = "a copy (forward), or the CPU's adds in the CPU's row order (backward 2): bit-identical";
  // Up to N / V ~ 24 rows share a token; atomics add them in any order. Reordering k adds of |x| <= 1 (partial sums
  // |s| <= k + 1) moves the result by at most k rounding errors of eps |s|: 24 * 6e-8 * 25 ~ 4e-5.
  const char* atomic = "atomicAdd order of <= 24 repeated rows: <= k * eps * k ~ 4e-5";
  for (auto [N, C] : {std::pair{0, 5}, {1, 1}, {7, 33}, {65, 64}, {257, 7}}) {
    const std::string shape = "N=" + std::to_string(N) + " C=" + std::to_string(C) + " V=11";
    add({"embedding_forward", 1, shape, 0.0, 0.0, exact, [=] { return embedding_forward_case(N, C, 1); }});
    add({"embedding_backward", 1, shape, 5e-5, 0.0, atomic, [=] { return embedding_backward_case(N, C, 1); }});
    add({"embedding_backward", 2, shape, 0.0, 0.0, exact, [=] { return embedding_backward_case(N, C, 2); }});
  }
}
