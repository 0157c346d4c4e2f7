// tests/kernels/ppo_cases.cpp — kernel table rows for kernels/ppo.cu against tinyds/posttrain/losses/ppo.h.
// Shapes: B sequences, T positions, n = B*T. lp - lp_old spans [-0.5, 0.5] and V - V_old [-0.5, 0.5], so both the
// ratio clip (0.8, 1.2) and the value clip (+-0.2) are active on some tokens and not on others.
#include "kernels/ppo.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/posttrain/losses/ppo.h"

namespace {

using tinyds::PPOConfig;
using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;
using tinyds::test::random_ints;

// A random 0/1 mask (1 in 4 masked) in which every row keeps at least one token (ppo_rewards needs one per row).
std::vector<float> ppo_mask(int B, int T, uint64_t seed) {
  const std::vector<int> m = random_ints(static_cast<size_t>(B) * T, seed, 0, 3);
  std::vector<float> mask(m.size());
  for (size_t i = 0; i < m.size(); i++) mask[i] = m[i] == 0 ? 0.0f : 1.0f;
  for (int i = 0; i < B; i++) mask[static_cast<size_t>(i) * T] = 1.0f;
  return mask;
}

CaseResult ppo_rewards_case(int B, int T) {
  const size_t n = static_cast<size_t>(B) * T;
  const std::vector<float> lp_old = random_floats(n, 1, -3.0f, 0.0f), lp_ref = random_floats(n, 2, -3.0f, 0.0f);
  const std::vector<float> scores = random_floats(B, 3), mask = ppo_mask(B, T, 4);
  std::vector<float> rewards(n);
  tinyds::ppo_rewards(rewards.data(), lp_old.data(), lp_ref.data(), scores.data(), mask.data(), B, T, 0.05);
  DeviceBuffer<float> d_rewards(n), d_lp_old(lp_old), d_lp_ref(lp_ref), d_scores(scores), d_mask(mask);
  tinyds::cuda::ppo_rewards(d_rewards.get(), d_lp_old.get(), d_lp_ref.get(), d_scores.get(), d_mask.get(), B, T,
                            0.05);
  return {{{"rewards", d_rewards.download(), rewards}}};
}

struct PpoInputs {
  std::vector<float> lp, values, lp_old, values_old, adv, ret, mask;
};
PpoInputs ppo_inputs(int B, int T) {
  const size_t n = static_cast<size_t>(B) * T;
  PpoInputs in{random_floats(n, 5, -3.0f, 0.0f), random_floats(n, 6), {}, {}, random_floats(n, 7, -2.0f, 2.0f),
               random_floats(n, 8), ppo_mask(B, T, 9)};
  const std::vector<float> dlp = random_floats(n, 10, -0.5f, 0.5f), dv = random_floats(n, 11, -0.5f, 0.5f);
  in.lp_old.resize(n);
  in.values_old.resize(n);
  for (size_t i = 0; i < n; i++) {
    in.lp_old[i] = in.lp[i] - dlp[i];
    in.values_old[i] = in.values[i] - dv[i];
  }
  return in;
}

CaseResult ppo_loss_forward_case(int B, int T) {
  const PpoInputs in = ppo_inputs(B, T);
  const long n = static_cast<long>(B) * T;
  const PPOConfig cfg;
  const tinyds::PPOStats st = tinyds::ppo_loss_forward(in.lp.data(), in.values.data(), in.lp_old.data(),
                                                       in.values_old.data(), in.adv.data(), in.ret.data(),
                                                       in.mask.data(), n, cfg);
  const std::vector<double> r = {st.loss, st.pg_loss, st.vf_loss, st.pg_clipfrac, st.vf_clipfrac, st.approxkl,
                                 st.ratio_mean};
  DeviceBuffer<float> d_stats(tinyds::cuda::kPpoNumStats), d_lp(in.lp), d_values(in.values), d_lp_old(in.lp_old),
      d_values_old(in.values_old), d_adv(in.adv), d_ret(in.ret), d_mask(in.mask);
  tinyds::cuda::ppo_loss_forward(d_stats.get(), d_lp.get(), d_values.get(), d_lp_old.get(), d_values_old.get(),
                                 d_adv.get(), d_ret.get(), d_mask.get(), n, cfg);
  return {{{"stats (loss, pg, vf, pg_clipfrac, vf_clipfrac, approxkl, ratio_mean)", d_stats.download(),
            std::vector<float>(r.begin(), r.end())}}};
}

CaseResult ppo_loss_backward_case(int B, int T) {
  const PpoInputs in = ppo_inputs(B, T);
  const long n = static_cast<long>(B) * T;
  const PPOConfig cfg;
  std::vector<float> dlp(n), dvalues(n);
  tinyds::ppo_loss_backward(dlp.data(), dvalues.data(), 1.5, in.lp.data(), in.values.data(), in.lp_old.data(),
                            in.values_old.data(), in.adv.data(), in.ret.data(), in.mask.data(), n, cfg);
  DeviceBuffer<float> d_dlp(n), d_dvalues(n), d_lp(in.lp), d_values(in.values), d_lp_old(in.lp_old),
      d_values_old(in.values_old), d_adv(in.adv), d_ret(in.ret), d_mask(in.mask);
  tinyds::cuda::ppo_loss_backward(d_dlp.get(), d_dvalues.get(), 1.5, d_lp.get(), d_values.get(), d_lp_old.get(),
                                  d_values_old.get(), d_adv.get(), d_ret.get(), d_mask.get(), n, cfg);
  return {{{"dlp", d_dlp.download(), dlp}, {"dvalues", d_dvalues.download(), dvalues}}};
}

}  // namespace

TINYDS_KERNEL_CASES(ppo) {
  const char* rew = "-kl_coef (lp_old - lp_ref) + score in float vs double: a few ulp of values <= 1.2";
  const char* fwd = "float token terms and tree sums over <= 2000 tokens vs double: ~1e-6 on O(1) means";
  const char* bwd = "float vs double per token: a few ulp of g |A| r and g (V - R)";
  for (auto [B, T] : {std::pair{1, 1}, {4, 7}, {16, 65}, {8, 257}}) {
    const std::string shape = "B=" + std::to_string(B) + " T=" + std::to_string(T);
    add({"ppo_rewards", 1, shape, 1e-6, 1e-6, rew, [=] { return ppo_rewards_case(B, T); }});
    add({"ppo_loss_forward", 1, shape, 1e-5, 1e-5, fwd, [=] { return ppo_loss_forward_case(B, T); }});
    add({"ppo_loss_backward", 1, shape, 1e-7, 1e-5, bwd, [=] { return ppo_loss_backward_case(B, T); }});
  }
}
