// tests/kernels/sampling_cases.cpp — kernel table rows for kernels/sampling.cu against sample_token in
// tinyds/model/sampling.h. Shapes: N rows, V vocab. The kernel gets, for row n, the uniform the CPU draws for it
// (a copy of the Rng draws it first), so both must choose the same token: tolerance 0 on the token ids.
#include <cmath>

#include "kernels/sampling.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/core/rng.h"
#include "tinyds/model/sampling.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;

// ties: logits rounded to multiples of 0.5, so many are equal and the tie rule (lower id first) decides the order.
CaseResult sampling_case(int N, int V, float temperature, int top_k, float top_p, bool ties) {
  std::vector<float> logits = random_floats(static_cast<size_t>(N) * V, 1, -4.0f, 4.0f);
  if (ties)
    for (float& x : logits) x = std::round(2.0f * x) / 2.0f;
  tinyds::SamplingParams sp;
  sp.temperature = temperature;
  sp.top_k = top_k;
  sp.top_p = top_p;
  tinyds::Rng rng(7);
  std::vector<double> uniforms(N);
  std::vector<float> ref(N);
  for (int n = 0; n < N; n++) {
    tinyds::Rng peek = rng;  // the draw sample_token is about to make (greedy makes none: the value is unused)
    uniforms[n] = peek.uniform_double();
    ref[n] = static_cast<float>(tinyds::sample_token(logits.data() + static_cast<size_t>(n) * V, V, sp, rng));
  }
  DeviceBuffer<float> d_logits(logits);
  DeviceBuffer<double> d_uniforms(uniforms);
  DeviceBuffer<int> d_tokens(N);
  tinyds::cuda::sample_tokens(d_tokens.get(), d_logits.get(), d_uniforms.get(), N, V, temperature, top_k, top_p);
  const std::vector<int> got = d_tokens.download();
  return {{{"tokens", std::vector<float>(got.begin(), got.end()), ref}}};  // ids < 2^24: exact in float
}

}  // namespace

TINYDS_KERNEL_CASES(sampling) {
  const char* why = "a discrete choice from the same uniform, sums in the CPU's order and in double: identical ids";
  struct Params {
    float temperature;
    int top_k;
    float top_p;
    const char* name;
  };
  const Params params[] = {{0.0f, 0, 1.0f, "greedy"},   {1.0f, 0, 1.0f, "T=1"},
                           {0.7f, 5, 1.0f, "T=0.7 top_k=5"}, {1.0f, 0, 0.9f, "T=1 top_p=0.9"},
                           {1.3f, 20, 0.5f, "T=1.3 top_k=20 top_p=0.5"}, {1.0f, 1, 1.0f, "top_k=1"}};
  for (auto [N, V] : {std::pair{0, 7}, {1, 1}, {7, 33}, {64, 128}, {5, 300}}) {
    for (const Params& p : params) {
      for (bool ties : {false, true}) {
        const std::string shape =
            "N=" + std::to_string(N) + " V=" + std::to_string(V) + " " + p.name + (ties ? " ties" : "");
        add({"sample_tokens", 1, shape, 0.0, 0.0, why,
             [=] { return sampling_case(N, V, p.temperature, p.top_k, p.top_p, ties); }});
      }
    }
  }
}
