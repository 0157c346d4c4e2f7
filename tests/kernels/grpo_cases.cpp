// tests/kernels/grpo_cases.cpp — kernel table rows for kernels/grpo.cu against tinyds/posttrain/losses/grpo.h.
// Shapes: B sequences in groups of G, T positions. lp - lp_old spans [-0.5, 0.5], so ratios fall on both sides of
// both clip bounds (0.8, 1.2 / 1.28); the mask is random 0/1 with one row fully masked where B > 1.
#include "kernels/grpo.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/posttrain/losses/grpo.h"

namespace {

using tinyds::GRPOConfig;
using tinyds::GRPOLossType;
using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;
using tinyds::test::random_ints;

CaseResult grpo_advantages_case(int B, int G, bool scale_rewards, bool binary) {
  GRPOConfig cfg;
  cfg.num_generations = G;
  cfg.scale_rewards = scale_rewards;
  std::vector<float> rewards = random_floats(B, 1, 0.0f, 2.0f);
  if (binary)  // 0/1 rewards (right / wrong), the common case, with many degenerate groups
    for (float& r : rewards) r = r < 1.0f ? 0.0f : 1.0f;
  for (int j = 0; j < G; j++) rewards[j] = 0.7f;  // group 0 is degenerate in every row: A must be exactly 0
  std::vector<float> adv(B);
  tinyds::grpo_advantages(adv.data(), rewards.data(), B, cfg);
  DeviceBuffer<float> d_adv(B), d_rewards(rewards);
  tinyds::cuda::grpo_advantages(d_adv.get(), d_rewards.get(), B, cfg);
  return {{{"advantages", d_adv.download(), adv}}};
}

struct GrpoInputs {
  std::vector<float> lp, lp_old, lp_ref, adv, mask;
};
GrpoInputs grpo_inputs(int B, int T) {
  const size_t n = static_cast<size_t>(B) * T;
  GrpoInputs in{random_floats(n, 2, -3.0f, 0.0f), {}, random_floats(n, 3, -3.0f, 0.0f), random_floats(B, 4, -2.0f, 2.0f),
                {}};
  const std::vector<float> delta = random_floats(n, 5, -0.5f, 0.5f);
  in.lp_old.resize(n);
  for (size_t i = 0; i < n; i++) in.lp_old[i] = in.lp[i] - delta[i];
  const std::vector<int> m = random_ints(n, 6, 0, 3);  // 1 in 4 masked
  in.mask.resize(n);
  for (size_t i = 0; i < n; i++) in.mask[i] = m[i] == 0 ? 0.0f : 1.0f;
  if (B > 1)
    for (int t = 0; t < T; t++) in.mask[static_cast<size_t>(B - 1) * T + t] = 0.0f;  // an all-masked row
  return in;
}

// The KL term: none (no lp_ref, beta 0), penalised (beta 0.04), or only reported (lp_ref given, beta 0).
enum class KlMode { none, penalised, reported };
const char* kl_mode_name(KlMode k) {
  return k == KlMode::none ? "beta=0" : k == KlMode::penalised ? "beta=0.04" : "beta=0 kl reported";
}

GRPOConfig grpo_config(GRPOLossType type, KlMode kl) {
  GRPOConfig cfg;
  cfg.loss_type = type;
  cfg.beta = kl == KlMode::penalised ? 0.04 : 0.0;
  cfg.epsilon_high = 0.28;  // DAPO's clip-higher, so the two bounds differ
  cfg.max_completion_length = 300;
  return cfg;
}

CaseResult grpo_loss_forward_case(int B, int T, GRPOLossType type, KlMode kl_mode) {
  const GrpoInputs in = grpo_inputs(B, T);
  const GRPOConfig cfg = grpo_config(type, kl_mode);
  const bool kl = kl_mode != KlMode::none;
  const float* lp_ref = kl ? in.lp_ref.data() : nullptr;
  const tinyds::GRPOStats st =
      tinyds::grpo_loss_forward(in.lp.data(), in.lp_old.data(), lp_ref, in.adv.data(), in.mask.data(), B, T, cfg);
  const std::vector<float> ref = {static_cast<float>(st.loss), static_cast<float>(st.kl),
                                  static_cast<float>(st.clip_ratio_low), static_cast<float>(st.clip_ratio_high),
                                  static_cast<float>(st.clip_ratio)};
  DeviceBuffer<float> d_stats(tinyds::cuda::kGrpoNumStats), d_lp(in.lp), d_lp_old(in.lp_old), d_lp_ref(in.lp_ref),
      d_adv(in.adv), d_mask(in.mask);
  tinyds::cuda::grpo_loss_forward(d_stats.get(), d_lp.get(), d_lp_old.get(), kl ? d_lp_ref.get() : nullptr,
                                  d_adv.get(), d_mask.get(), B, T, cfg);
  return {{{"stats (loss, kl, clip_low, clip_high, clip_ratio)", d_stats.download(), ref}}};
}

CaseResult grpo_loss_backward_case(int B, int T, GRPOLossType type, KlMode kl_mode) {
  const GrpoInputs in = grpo_inputs(B, T);
  const GRPOConfig cfg = grpo_config(type, kl_mode);
  const bool kl = kl_mode != KlMode::none;
  const double dloss = 0.75;
  std::vector<float> dlp(in.lp.size());
  tinyds::grpo_loss_backward(dlp.data(), dloss, in.lp.data(), in.lp_old.data(), kl ? in.lp_ref.data() : nullptr,
                             in.adv.data(), in.mask.data(), B, T, cfg);
  DeviceBuffer<float> d_dlp(dlp.size()), d_lp(in.lp), d_lp_old(in.lp_old), d_lp_ref(in.lp_ref), d_adv(in.adv),
      d_mask(in.mask);
  tinyds::cuda::grpo_loss_backward(d_dlp.get(), dloss, d_lp.get(), d_lp_old.get(), kl ? d_lp_ref.get() : nullptr,
                                   d_adv.get(), d_mask.get(), B, T, cfg);
  return {{{"dlp", d_dlp.download(), dlp}}};
}

}  // namespace

TINYDS_KERNEL_CASES(grpo) {
  // Double on both sides (the kernel's one thread per group mirrors the CPU loop), rounded once to float; only an
  // fma contraction can differ, far below float's resolution.
  add({"grpo_advantages", 1, "B=2 G=2", 1e-7, 1e-6, "double on both sides, rounded once to float",
       [] { return grpo_advantages_case(2, 2, true, false); }});
  for (auto [B, G] : {std::pair{16, 8}, {48, 16}, {35, 7}}) {
    const std::string shape = "B=" + std::to_string(B) + " G=" + std::to_string(G);
    for (bool scale : {true, false})
      for (bool binary : {false, true})
        add({"grpo_advantages", 1, shape + (scale ? "" : " dr_grpo") + (binary ? " 0/1 rewards" : ""), 1e-7, 1e-6,
             "double on both sides, rounded once to float",
             [=] { return grpo_advantages_case(B, G, scale, binary); }});
  }
  // Loss: per-token terms in float (expf of lp - lp_old, expm1f for k3) vs double, summed in float over <= 2000
  // tokens (a tree order) vs the CPU's double: the sums are means of O(1) terms, ~1e-6 absolute.
  const char* fwd = "float token terms and float tree sums over <= 2000 tokens vs double: ~1e-6 on O(1) means";
  // Gradient: dloss w_i (-A r + beta (1 - exp(x))) per token in float vs double: a few ulp relative; the two terms
  // can cancel, so an absolute floor of a few ulp of w_i |A| r (w_i <= 1).
  const char* bwd = "float vs double per token: a few ulp, absolute where -A r and the k3 term cancel";
  for (auto [B, T] : {std::pair{1, 1}, {4, 7}, {16, 65}, {8, 257}}) {
    for (GRPOLossType type : {GRPOLossType::grpo, GRPOLossType::bnpo, GRPOLossType::dapo, GRPOLossType::dr_grpo}) {
      for (KlMode kl : {KlMode::none, KlMode::penalised, KlMode::reported}) {
        const std::string shape = "B=" + std::to_string(B) + " T=" + std::to_string(T) + " " +
                                  tinyds::grpo_loss_type_name(type) + " " + kl_mode_name(kl);
        add({"grpo_loss_forward", 1, shape, 1e-5, 1e-5, fwd, [=] { return grpo_loss_forward_case(B, T, type, kl); }});
        add({"grpo_loss_backward", 1, shape, 1e-7, 1e-5, bwd,
             [=] { return grpo_loss_backward_case(B, T, type, kl); }});
      }
    }
  }
}
