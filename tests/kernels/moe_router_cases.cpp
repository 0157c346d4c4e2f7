// tests/kernels/moe_router_cases.cpp — kernel table rows for kernels/moe_router.cu against tinyds/ops/moe_router.h.
//
// Shapes: N tokens, E routed experts, K experts per token; n_group groups, topk_group eligible groups.
// Forward rows compare scores, topk_idx (the routing decision: must be identical) and topk_w; backward rows feed
// the CPU forward's scores and choice to both backwards and compare dlogits.
// Tie rows draw logits from {-1, 0, 1} with no bias, so most tokens have equal scores among their candidates: the
// kernel must break ties to the lower expert index exactly as the CPU does (a "<=" instead of "<" fails them).
#include "kernels/moe_router.cuh"
#include "tests/kernels/kernel_util.h"
#include "tests/kernels/moe_cases_util.h"
#include "tinyds/ops/moe_router.h"

namespace {

using tinyds::ScoreFunc;
using tinyds::test::as_floats;
using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;
using tinyds::test::random_ints;

struct RouterShape {
  int N, E, K, n_group, topk_group;
  ScoreFunc func;
  bool bias;  // a bias vector, or nullptr
  bool ties;  // logits from {-1, 0, 1}
  std::string name() const {
    return "N=" + std::to_string(N) + " E=" + std::to_string(E) + " K=" + std::to_string(K) +
           (n_group > 1 ? " groups=" + std::to_string(n_group) + "/" + std::to_string(topk_group) : "") + " " +
           tinyds::score_func_name(func) + (bias ? " bias" : "") + (ties ? " ties" : "");
  }
};

const float kRouteScale = 2.5f;  // V3's value for the 671B model: a scale != 1 shows up if it is applied twice

std::vector<float> router_logits(const RouterShape& s, uint64_t seed) {
  const size_t n = static_cast<size_t>(s.N) * s.E;
  if (!s.ties) return random_floats(n, seed, -3.0f, 3.0f);
  std::vector<float> logits(n);
  const std::vector<int> q = random_ints(n, seed, -1, 1);
  for (size_t i = 0; i < n; i++) logits[i] = static_cast<float>(q[i]);
  return logits;
}

CaseResult router_forward_case(const RouterShape& s, int version) {
  const int N = s.N, E = s.E, K = s.K;
  const std::vector<float> logits = router_logits(s, 11);
  // A bias of the size aux-loss-free balancing reaches (a few hundred steps of gamma = 1e-3): it reorders close
  // experts without dominating the scores.
  const std::vector<float> bias = random_floats(E, 12, -0.1f, 0.1f);
  const float* bias_host = s.bias ? bias.data() : nullptr;
  std::vector<float> scores(static_cast<size_t>(N) * E), w(static_cast<size_t>(N) * K);
  std::vector<int> idx(static_cast<size_t>(N) * K);
  tinyds::moe_router_forward(scores.data(), idx.data(), w.data(), logits.data(), bias_host, N, E, K, s.func,
                             kRouteScale, s.n_group, s.topk_group);
  DeviceBuffer<float> d_scores(scores.size()), d_w(w.size()), d_logits(logits), d_bias(bias);
  DeviceBuffer<int> d_idx(idx.size());
  tinyds::cuda::moe_router_forward(d_scores.get(), d_idx.get(), d_w.get(), d_logits.get(),
                                   s.bias ? d_bias.get() : nullptr, N, E, K, s.func, kRouteScale, s.n_group,
                                   s.topk_group, version);
  return {{{"scores", d_scores.download(), scores},
           {"topk_idx", as_floats(d_idx.download()), as_floats(idx)},
           {"topk_w", d_w.download(), w}}};
}

CaseResult router_backward_case(const RouterShape& s, bool extra, int version) {
  const int N = s.N, E = s.E, K = s.K;
  const std::vector<float> logits = router_logits(s, 21), bias = random_floats(E, 22, -0.1f, 0.1f);
  std::vector<float> scores(static_cast<size_t>(N) * E), w(static_cast<size_t>(N) * K);
  std::vector<int> idx(static_cast<size_t>(N) * K);
  tinyds::moe_router_forward(scores.data(), idx.data(), w.data(), logits.data(), s.bias ? bias.data() : nullptr, N,
                             E, K, s.func, kRouteScale, s.n_group, s.topk_group);
  const std::vector<float> dw = random_floats(w.size(), 23), dextra = random_floats(scores.size(), 24);
  std::vector<float> dlogits(scores.size());
  tinyds::moe_router_backward(dlogits.data(), dw.data(), extra ? dextra.data() : nullptr, scores.data(), idx.data(),
                              N, E, K, s.func, kRouteScale);
  DeviceBuffer<float> d_dlogits(dlogits.size()), d_dw(dw), d_extra(dextra), d_scores(scores);
  DeviceBuffer<int> d_idx(idx);
  tinyds::cuda::moe_router_backward(d_dlogits.get(), d_dw.get(), extra ? d_extra.get() : nullptr, d_scores.get(),
                                    d_idx.get(), N, E, K, s.func, kRouteScale, version);
  return {{{"dlogits", d_dlogits.download(), dlogits}}};
}

}  // namespace

TINYDS_KERNEL_CASES(moe_router) {
  const ScoreFunc sig = ScoreFunc::sigmoid, soft = ScoreFunc::softmax;
  const std::vector<RouterShape> shapes = {
      {0, 8, 2, 1, 1, sig, true, false},     // empty batch
      {1, 8, 1, 1, 1, sig, true, false},     // one token, top-1
      {7, 16, 2, 1, 1, sig, false, false},   // no bias
      {33, 64, 6, 8, 3, sig, true, false},   // V3's routing shape, scaled down: 8 groups, 3 eligible
      {65, 16, 4, 1, 1, soft, true, false},  // softmax scores (DeepSeekMoE / V2)
      {129, 16, 4, 4, 2, soft, true, false},  // softmax with groups; N past one block of 128 threads
      {257, 12, 3, 3, 1, sig, true, false},  // one eligible group of 4 for K = 3
      {33, 16, 4, 1, 1, sig, false, true},   // many exact ties
      {65, 32, 4, 8, 2, sig, false, true},   // ties between groups and within them
      {33, 256, 8, 8, 4, sig, true, false},  // DeepSeek-V3's routing: 256 experts, top-8, 8 groups, 4 eligible
      {17, 256, 8, 8, 4, soft, false, true},  // the same with softmax and ties
  };
  // Forward: under the emulation the kernel does the CPU's float/double operations in the CPU's order (bits
  // agree); on a GPU expf may differ from glibc's by an ulp or two, which moves s and g by ~1e-7 relative:
  // atol 1e-6, rtol 1e-5. With E <= 256, atol + rtol * (E - 1) < 3e-3, so every chosen index must be identical.
  const char* why_fwd = "CPU arithmetic in CPU order (bits agree in emulation); GPU expf may differ by ~2 ulp; "
                        "indices must match exactly";
  // Backward: the same double-precision arithmetic in the same order from the same inputs, rounded once to float;
  // a GPU's fused multiply-adds change the double by ~1e-16, which can move the float by at most one ulp.
  const char* why_bwd = "same double arithmetic and order, one rounding to float: <= 1 ulp (GPU FMA)";
  for (const RouterShape& s : shapes) {
    for (int version : {1, 2})
      add({"moe_router_forward", version, s.name(), 1e-6, 1e-5, why_fwd,
           [s, version] { return router_forward_case(s, version); }});
    add({"moe_router_backward", 1, s.name(), 1e-7, 1e-6, why_bwd,
         [s] { return router_backward_case(s, false, 1); }});
    add({"moe_router_backward", 1, s.name() + " +dscores_extra", 1e-7, 1e-6, why_bwd,
         [s] { return router_backward_case(s, true, 1); }});
  }
}
