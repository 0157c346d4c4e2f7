// tests/posttrain/golden_test.cpp — tinyds's post-training losses against the PyTorch reference
// (tests/reference/posttrain_losses.py; doctest suite "posttrain_golden", run by CTest after the fixture that
// writes the file named by TINYDS_POSTTRAIN_GOLDEN).
//
// The reference is written from the formulas in float64 with autograd; this test feeds the same inputs to the
// double instantiations and compares every loss value and gradient.
// Tolerance: max |tinyds - torch| <= 1e-10 * max(|torch| over the tensor, 1). Both sides are float64 evaluating
// the same math in a different order: each value is a short chain (< 100 operations: exp, log, sums over at most
// 42 tokens or 7 logits) of quantities of size <= ~10, so rounding differences are ~1e-14; 1e-10 leaves four
// orders of margin, while any formula difference (a missing T^2, a wrong denominator, a flipped clip bound, a
// biased vs unbiased std) changes results by >= 1e-4 relative.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tinyds/posttrain/losses/distill.h"
#include "tinyds/posttrain/losses/dpo.h"
#include "tinyds/posttrain/losses/gae.h"
#include "tinyds/posttrain/losses/grpo.h"
#include "tinyds/posttrain/losses/kl.h"
#include "tinyds/posttrain/losses/logprobs.h"
#include "tinyds/posttrain/losses/ppo.h"
#include "tinyds/posttrain/losses/reinforce.h"
#include "tinyds/posttrain/losses/reward_model.h"
#include "tinyds/posttrain/losses/sft.h"
#include "tinyds/train/safetensors.h"

using namespace tinyds;
using vec = std::vector<double>;

namespace {

constexpr double kGoldenTol = 1e-10;

const SafeTensors& golden() {
  static const SafeTensors st = [] {
    const char* p = std::getenv("TINYDS_POSTTRAIN_GOLDEN");
    REQUIRE_MESSAGE(p != nullptr, "TINYDS_POSTTRAIN_GOLDEN is not set: run through ctest (posttrain_golden_parity)");
    return read_safetensors(p);
  }();
  return st;
}

// An F64 tensor as doubles; its shape must be `shape`.
vec f64(const std::string& name, const std::vector<int64_t>& shape) {
  const SafeTensors& g = golden();
  REQUIRE_MESSAGE(g.has(name), "golden file lacks " << name);
  const TensorData& t = g.tensors.at(name);
  REQUIRE_MESSAGE(t.dtype == DType::F64, name << " is not F64");
  REQUIRE_MESSAGE(t.shape == shape, name << " has an unexpected shape");
  vec out(t.numel());
  std::memcpy(out.data(), t.bytes.data(), out.size() * sizeof(double));
  return out;
}
std::vector<int> i32(const std::string& name, int n) {
  const std::vector<int32_t> v = golden().get_i32(name, {n}, "posttrain golden");
  return std::vector<int>(v.begin(), v.end());
}
double meta(const std::string& key) {
  auto it = golden().metadata.find(key);
  REQUIRE_MESSAGE(it != golden().metadata.end(), "golden file lacks metadata " << key);
  return std::stod(it->second);
}
double scalar(const std::string& name) { return f64(name, {1})[0]; }

// max |a - b| / max(max |b|, 1) over the tensor, printed, and checked against kGoldenTol.
void compare(const std::string& what, const vec& a, const vec& b) {
  REQUIRE(a.size() == b.size());
  double err = 0, scale = 1.0;
  for (std::size_t i = 0; i < a.size(); i++) {
    err = std::max(err, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  MESSAGE(what << ": scaled max error " << err / scale);
  CHECK_MESSAGE(err / scale <= kGoldenTol, what << ": scaled max error " << err / scale);
}
void compare(const std::string& what, double a, double b) { compare(what, vec{a}, vec{b}); }

}  // namespace

TEST_SUITE("posttrain_golden") {

TEST_CASE("posttrain/golden: logprobs, entropy, sft") {
  const int N = 6, V = 7;
  vec logits = f64("lp.logits", {N, V}), R = f64("lp.R", {N}), lp(N), ent(N), d(N * V), dlp(N), one(N, 1.0);
  const std::vector<int> tg = i32("lp.targets", N);
  const double T = meta("temperature");
  logprobs_forward(lp.data(), logits.data(), tg.data(), N, V, T);
  compare("lp", lp, f64("lp.lp", {N}));
  logprobs_backward(d.data(), R.data(), logits.data(), tg.data(), N, V, T);
  compare("lp.dlogits", d, f64("lp.dlogits", {N, V}));
  entropy_forward(ent.data(), logits.data(), tg.data(), N, V, T);
  compare("entropy", ent, f64("lp.entropy", {N}));
  entropy_backward(d.data(), R.data(), logits.data(), tg.data(), N, V, T);
  compare("entropy.dlogits", d, f64("lp.dlogits_entropy", {N, V}));
  vec mask(N);
  for (int n = 0; n < N; n++) mask[n] = tg[n] < 0 ? 0.0 : 1.0;
  logprobs_forward(lp.data(), logits.data(), tg.data(), N, V);
  compare("sft.loss", sft_loss_forward(lp.data(), mask.data(), N), scalar("sft.loss"));
  sft_loss_backward(dlp.data(), 1.0, mask.data(), N);
  logprobs_backward(d.data(), dlp.data(), logits.data(), tg.data(), N, V);
  compare("sft.dlogits", d, f64("sft.dlogits", {N, V}));
}

TEST_CASE("posttrain/golden: kl k1 k2 k3") {
  const int n = 10;
  const vec lp = f64("kl.lp", {n}), ref = f64("kl.lp_ref", {n}), R = f64("kl.R", {n});
  vec k(n), d(n);
  for (KLEstimator e : {KLEstimator::k1, KLEstimator::k2, KLEstimator::k3}) {
    const std::string name = kl_estimator_name(e);
    kl_forward(k.data(), lp.data(), ref.data(), n, e);
    compare("kl." + name, k, f64("kl." + name, {n}));
    kl_backward(d.data(), R.data(), lp.data(), ref.data(), n, e);
    compare("kl.dlp_" + name, d, f64("kl.dlp_" + name, {n}));
  }
}

TEST_CASE("posttrain/golden: distillation, forward and reverse KL") {
  const int N = 6, V = 7;
  const vec s = f64("distill.student", {N, V}), t = f64("distill.teacher", {N, V});
  const std::vector<int> tg = i32("distill.targets", N);
  DistillConfig c;
  c.alpha = meta("distill_alpha");
  c.temperature = meta("distill_temperature");
  vec d(N * V);
  for (auto [name, div] : {std::pair{"fwd", DistillDivergence::forward_kl}, {"rev", DistillDivergence::reverse_kl}}) {
    c.divergence = div;
    const std::string p = std::string("distill.") + name;
    compare(p + ".loss", distill_loss_forward(s.data(), t.data(), tg.data(), N, V, c).loss, scalar(p + ".loss"));
    distill_loss_backward(d.data(), 1.0, s.data(), t.data(), tg.data(), N, V, c);
    compare(p + ".dstudent", d, f64(p + ".dstudent", {N, V}));
  }
}

TEST_CASE("posttrain/golden: reward model") {
  const int P = 5;
  const vec rw = f64("rm.r_w", {P}), rl = f64("rm.r_l", {P});
  vec dw(P), dl(P);
  compare("rm.loss", reward_model_loss_forward(rw.data(), rl.data(), P).loss, scalar("rm.loss"));
  reward_model_loss_backward(dw.data(), dl.data(), 1.0, rw.data(), rl.data(), P);
  compare("rm.dr_w", dw, f64("rm.dr_w", {P}));
  compare("rm.dr_l", dl, f64("rm.dr_l", {P}));
}

TEST_CASE("posttrain/golden: dpo sigmoid, length-normalised, ipo") {
  const int B = 4, T = 6;
  const vec lw = f64("dpo.lp_w", {B, T}), rw = f64("dpo.lp_ref_w", {B, T}), mw = f64("dpo.mask_w", {B, T});
  const vec ll = f64("dpo.lp_l", {B, T}), rl = f64("dpo.lp_ref_l", {B, T}), ml = f64("dpo.mask_l", {B, T});
  vec dw(B * T), dl(B * T);
  for (const char* variant : {"sigmoid", "norm", "ipo"}) {
    DPOConfig c;
    c.beta = meta("dpo_beta");
    c.length_normalize = std::string(variant) == "norm";
    c.loss_type = std::string(variant) == "ipo" ? DPOLossType::ipo : DPOLossType::sigmoid;
    const std::string p = std::string("dpo.") + variant;
    const DPOStats s = dpo_loss_forward(lw.data(), rw.data(), mw.data(), ll.data(), rl.data(), ml.data(), B, T, c);
    compare(p + ".loss", s.loss, scalar(p + ".loss"));
    compare(p + ".margin", s.rewards_margin, scalar(p + ".margin"));
    CHECK(s.rewards_accuracy == scalar(p + ".accuracy"));
    dpo_loss_backward(dw.data(), dl.data(), 1.0, lw.data(), rw.data(), mw.data(), ll.data(), rl.data(), ml.data(), B,
                      T, c);
    compare(p + ".dlp_w", dw, f64(p + ".dlp_w", {B, T}));
    compare(p + ".dlp_l", dl, f64(p + ".dlp_l", {B, T}));
  }
}

TEST_CASE("posttrain/golden: ppo rewards, gae, whitening, clipped losses") {
  const int B = 3, T = 7, n = B * T;
  const vec mask = f64("ppo.mask", {B, T}), lp_old = f64("ppo.lp_old", {B, T}), lp_ref = f64("ppo.lp_ref", {B, T});
  const vec v_old = f64("ppo.values_old", {B, T}), scores = f64("ppo.scores", {B});
  const vec lp = f64("ppo.lp", {B, T}), values = f64("ppo.values", {B, T});
  PPOConfig c;
  c.kl_coef = meta("ppo_kl_coef");
  c.gamma = meta("ppo_gamma");
  c.lam = meta("ppo_lam");
  c.cliprange = meta("ppo_cliprange");
  c.cliprange_value = meta("ppo_cliprange_value");
  c.vf_coef = meta("ppo_vf_coef");
  vec rw(n), adv(n), ret(n), wa(n), dlp(n), dv(n);
  ppo_rewards(rw.data(), lp_old.data(), lp_ref.data(), scores.data(), mask.data(), B, T, c.kl_coef);
  compare("ppo.rewards", rw, f64("ppo.rewards", {B, T}));
  compute_gae(adv.data(), ret.data(), rw.data(), v_old.data(), mask.data(), B, T, c.gamma, c.lam);
  compare("ppo.advantages", adv, f64("ppo.advantages", {B, T}));
  compare("ppo.returns", ret, f64("ppo.returns", {B, T}));
  masked_whiten(wa.data(), adv.data(), mask.data(), n);
  compare("ppo.whitened", wa, f64("ppo.whitened", {B, T}));
  const PPOStats s = ppo_loss_forward(lp.data(), values.data(), lp_old.data(), v_old.data(), wa.data(), ret.data(),
                                      mask.data(), n, c);
  compare("ppo.loss", s.loss, scalar("ppo.loss"));
  compare("ppo.approxkl", s.approxkl, scalar("ppo.approxkl"));
  CHECK(s.pg_clipfrac == doctest::Approx(scalar("ppo.pg_clipfrac")).epsilon(1e-14));
  CHECK(s.vf_clipfrac == doctest::Approx(scalar("ppo.vf_clipfrac")).epsilon(1e-14));
  ppo_loss_backward(dlp.data(), dv.data(), 1.0, lp.data(), values.data(), lp_old.data(), v_old.data(), wa.data(),
                    ret.data(), mask.data(), n, c);
  compare("ppo.dlp", dlp, f64("ppo.dlp", {B, T}));
  compare("ppo.dvalues", dv, f64("ppo.dvalues", {B, T}));
}

TEST_CASE("posttrain/golden: grpo advantages, four loss types, reinforce") {
  GRPOConfig c;
  c.num_generations = static_cast<int>(meta("grpo_num_generations"));
  c.beta = meta("grpo_beta");
  c.epsilon = meta("grpo_epsilon");
  c.epsilon_high = meta("grpo_epsilon_high");
  c.max_completion_length = static_cast<int>(meta("grpo_max_completion_length"));
  const int B = 3 * c.num_generations, T = 6, n = B * T;
  const vec rewards = f64("grpo.rewards", {B}), mask = f64("grpo.mask", {B, T});
  const vec lp = f64("grpo.lp", {B, T}), lp_old = f64("grpo.lp_old", {B, T}), lp_ref = f64("grpo.lp_ref", {B, T});
  vec A(B), d(n);
  const GRPOGroupStats gs = grpo_advantages(A.data(), rewards.data(), B, c);
  CHECK(gs.degenerate_groups == 1);
  compare("grpo.advantages", A, f64("grpo.advantages", {B}));
  for (GRPOLossType type : {GRPOLossType::grpo, GRPOLossType::bnpo, GRPOLossType::dapo, GRPOLossType::dr_grpo}) {
    c.loss_type = type;
    const std::string p = std::string("grpo.") + grpo_loss_type_name(type);
    const GRPOStats s = grpo_loss_forward(lp.data(), lp_old.data(), lp_ref.data(), A.data(), mask.data(), B, T, c);
    compare(p + ".loss", s.loss, scalar(p + ".loss"));
    compare("grpo.kl", s.kl, scalar("grpo.kl"));
    CHECK(s.clip_ratio == doctest::Approx(scalar("grpo.clip_ratio")).epsilon(1e-14));
    grpo_loss_backward(d.data(), 1.0, lp.data(), lp_old.data(), lp_ref.data(), A.data(), mask.data(), B, T, c);
    compare(p + ".dlp", d, f64(p + ".dlp", {B, T}));
  }
  vec Ar(B);
  reinforce_advantages(Ar.data(), rewards.data(), B, c.num_generations);
  compare("reinforce.advantages", Ar, f64("reinforce.advantages", {B}));
  compare("reinforce.loss", reinforce_loss_forward(lp.data(), Ar.data(), mask.data(), B, T), scalar("reinforce.loss"));
  reinforce_loss_backward(d.data(), 1.0, Ar.data(), mask.data(), B, T);
  compare("reinforce.dlp", d, f64("reinforce.dlp", {B, T}));
}

}  // TEST_SUITE
