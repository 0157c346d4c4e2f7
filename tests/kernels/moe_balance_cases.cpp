// tests/kernels/moe_balance_cases.cpp — kernel table rows for kernels/moe_balance.cu against
// tinyds/ops/moe_balance.h.
//
// Shapes: N = B*T tokens, E experts, K experts per token.
// The load and bias rows cover an empty batch, a routing where every expert gets exactly the mean load (sign 0:
// the bias must not move) and a batch of 160000 pairs (more than the 128 blocks the histogram launches: the
// grid-stride loop). The loss rows compare f, the returned loss and dscores.
#include "kernels/moe_balance.cuh"
#include "tests/kernels/kernel_util.h"
#include "tests/kernels/moe_cases_util.h"
#include "tinyds/ops/moe_balance.h"

namespace {

using tinyds::test::as_floats;
using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;
using tinyds::test::random_routing;

struct LoadShape {
  int N, K, E;
  bool uniform;  // pair p goes to expert p % E: with N*K a multiple of E every load equals the mean
  std::string name() const {
    return "N=" + std::to_string(N) + " K=" + std::to_string(K) + " E=" + std::to_string(E) +
           (uniform ? " uniform" : "");
  }
};

std::vector<int> routing(const LoadShape& s, uint64_t seed) {
  if (!s.uniform) return random_routing(s.N, s.K, s.E, seed);
  std::vector<int> idx(static_cast<size_t>(s.N) * s.K);
  for (size_t p = 0; p < idx.size(); p++) idx[p] = static_cast<int>(p % s.E);
  return idx;
}

// moe_expert_load, then moe_update_bias and moe_maxvio on the load each side computed.
CaseResult load_bias_maxvio_case(const LoadShape& s) {
  const std::vector<int> idx = routing(s, 51);
  std::vector<int> load(s.E);
  tinyds::moe_expert_load(load.data(), idx.data(), s.N, s.K, s.E);
  std::vector<float> bias = random_floats(s.E, 52, -0.1f, 0.1f);
  DeviceBuffer<float> d_bias(bias);
  tinyds::moe_update_bias(bias.data(), load.data(), s.E, 1e-3f);
  const double maxvio = tinyds::moe_maxvio(load.data(), s.E);

  DeviceBuffer<int> d_idx(idx), d_load(s.E);
  tinyds::cuda::moe_expert_load(d_load.get(), d_idx.get(), s.N, s.K, s.E);
  tinyds::cuda::moe_update_bias(d_bias.get(), d_load.get(), s.E, 1e-3f);
  const double d_maxvio = tinyds::cuda::moe_maxvio(d_load.get(), s.E);
  return {{{"load", as_floats(d_load.download()), as_floats(load)},
           {"bias", d_bias.download(), bias},
           {"maxvio", {static_cast<float>(d_maxvio)}, {static_cast<float>(maxvio)}}}};
}

struct LossShape {
  int B, T, E, K;
  std::string name() const {
    return "B=" + std::to_string(B) + " T=" + std::to_string(T) + " E=" + std::to_string(E) +
           " K=" + std::to_string(K);
  }
};

const float kAlpha = 1e-2f;  // larger than V3's 1e-4 only so the loss is not tiny next to float's atol
const float kDloss = 0.7f;   // != 1, so a dropped dloss factor shows

// The sequence-wise loss (aux = false) or the expert-level loss over all N tokens (aux = true): forward and backward.
CaseResult loss_case(const LossShape& s, bool aux) {
  const int N = s.B * s.T, E = s.E, K = s.K;
  const std::vector<float> scores = random_floats(static_cast<size_t>(N) * E, 61, 0.01f, 1.0f);  // sigmoid range
  const std::vector<int> idx = random_routing(N, K, E, 62);
  const size_t nf = aux ? E : static_cast<size_t>(s.B) * E;
  std::vector<float> f(nf), dscores(scores.size());
  float loss;
  if (aux) {
    loss = tinyds::moe_aux_forward(f.data(), scores.data(), idx.data(), N, E, K, kAlpha);
    tinyds::moe_aux_backward(dscores.data(), kDloss, f.data(), scores.data(), N, E, kAlpha);
  } else {
    loss = tinyds::moe_seqaux_forward(f.data(), scores.data(), idx.data(), s.B, s.T, E, K, kAlpha);
    tinyds::moe_seqaux_backward(dscores.data(), kDloss, f.data(), scores.data(), s.B, s.T, E, kAlpha);
  }
  DeviceBuffer<float> d_f(nf), d_scores(scores), d_dscores(scores.size());
  DeviceBuffer<int> d_idx(idx);
  float d_loss;
  if (aux) {
    d_loss = tinyds::cuda::moe_aux_forward(d_f.get(), d_scores.get(), d_idx.get(), N, E, K, kAlpha);
    tinyds::cuda::moe_aux_backward(d_dscores.get(), kDloss, d_f.get(), d_scores.get(), N, E, kAlpha);
  } else {
    d_loss = tinyds::cuda::moe_seqaux_forward(d_f.get(), d_scores.get(), d_idx.get(), s.B, s.T, E, K, kAlpha);
    tinyds::cuda::moe_seqaux_backward(d_dscores.get(), kDloss, d_f.get(), d_scores.get(), s.B, s.T, E, kAlpha);
  }
  return {{{"f", d_f.download(), f}, {"loss", {d_loss}, {loss}}, {"dscores", d_dscores.download(), dscores}}};
}

}  // namespace

TINYDS_KERNEL_CASES(moe_balance) {
  const std::vector<LoadShape> loads = {
      {0, 2, 8, false},     // empty batch: zero loads, bias moves by 0 (sign 0), MaxVio 0
      {1, 1, 8, false},     // one token
      {7, 2, 16, false},
      {65, 4, 16, true},    // every load equals the mean: sign 0 everywhere
      {257, 6, 64, false},
      {20000, 8, 64, false},  // 160000 pairs: more than 128 blocks of 256, the grid-stride loop
      {33, 2, 300, false},    // E above the 256 threads of the single-block reductions: threads loop over experts
  };
  // Loads are integer counts (exact); the bias moves by +-gamma or 0, one fp32 addition as on the CPU (exact);
  // MaxVio is the CPU's double expression on the same integers (exact). atol + rtol * max|load| < 1 holds.
  for (const LoadShape& s : loads)
    add({"moe_expert_load+update_bias+maxvio", 1, s.name(), 0.0, 0.0, "integer counts and one fp32 add: exact",
         [s] { return load_bias_maxvio_case(s); }});

  const std::vector<LossShape> losses = {
      {1, 1, 8, 2},    // one token
      {2, 7, 16, 2},
      {3, 33, 64, 6},
      {4, 65, 16, 4},  // T*K = 260 pairs per sequence: 128 threads count 2-3 each
      {2, 7, 256, 8},  // E = 256 (V3) above the block's 128 threads: each thread handles two experts
  };
  // f: the CPU's double expression on integer counts (exact). loss: per-sequence double sums in the CPU's order,
  // summed over sequences on the host in the CPU's order (bits agree in emulation; a GPU's FMA in double moves the
  // double by ~1e-16, the float by <= 1 ulp). dscores: the CPU's double arithmetic per token (same). Values are
  // ~1e-4..1e-2, so the relative term decides: rtol 1e-6 (~8 ulp); atol 1e-12 only absorbs values near 0.
  const char* why = "CPU's double arithmetic in CPU order, one rounding to float: <= 1 ulp (GPU FMA)";
  for (const LossShape& s : losses) {
    add({"moe_seqaux_forward+backward", 1, s.name(), 1e-12, 1e-6, why, [s] { return loss_case(s, false); }});
    const LossShape all{1, s.B * s.T, s.E, s.K};
    add({"moe_aux_forward+backward", 1, all.name(), 1e-12, 1e-6, why, [s] { return loss_case(s, true); }});
  }
}
