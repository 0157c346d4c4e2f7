// tinyds/python/losses.cpp — the post-training losses of tinyds/posttrain on numpy arrays: each returns its value
// (and the statistics the C++ reports) together with its gradient, computed by the same C++ forward and backward
// the trainers use. Arrays are float32 (the trainers' precision), per-token tensors (B, T), masks 0/1.
//
//   tinyds.losses.logprobs, sft, distill, reward_model, dpo, kl, ppo_rewards, gae, whiten, ppo, grpo_advantages, grpo
#include <pybind11/stl.h>

#include "tinyds/posttrain/losses/distill.h"
#include "tinyds/posttrain/losses/dpo.h"
#include "tinyds/posttrain/losses/gae.h"
#include "tinyds/posttrain/losses/grpo.h"
#include "tinyds/posttrain/losses/kl.h"
#include "tinyds/posttrain/losses/logprobs.h"
#include "tinyds/posttrain/losses/ppo.h"
#include "tinyds/posttrain/losses/reward_model.h"
#include "tinyds/posttrain/losses/sft.h"
#include "tinyds/python/arrays.h"
#include "tinyds/python/module.h"

namespace tinyds::python {

namespace {

using F = In<float>;
using I = In<int>;

// (B, T) of a 2-D array, naming the argument when it is not 2-D.
std::pair<int, int> shape2(const F& a, const char* name) {
  if (a.ndim() != 2) throw_error(name, ": expected a 2-D (B, T) array, got ", a.ndim(), " dimensions");
  return {static_cast<int>(a.shape(0)), static_cast<int>(a.shape(1))};
}

std::vector<py::ssize_t> shape_of(const py::array& a) { return {a.shape(), a.shape() + a.ndim()}; }

KLEstimator parse_kl(const std::string& s) {
  if (s == "k1") return KLEstimator::k1;
  if (s == "k2") return KLEstimator::k2;
  if (s == "k3") return KLEstimator::k3;
  throw_error("estimator '", s, "': expected k1, k2 or k3");
}

GRPOLossType parse_grpo_loss(const std::string& s) {
  for (GRPOLossType t : {GRPOLossType::grpo, GRPOLossType::bnpo, GRPOLossType::dapo, GRPOLossType::dr_grpo})
    if (s == grpo_loss_type_name(t)) return t;
  throw_error("loss_type '", s, "': expected grpo, bnpo, dapo or dr_grpo");
}

void bind_logprob_family(py::module_& l) {
  l.def("logprobs", [](const F& logits, const I& targets, double temperature) {
    if (logits.ndim() != 2) throw_error("logits: expected (N, V), got ", logits.ndim(), " dimensions");
    const int N = static_cast<int>(logits.shape(0)), V = static_cast<int>(logits.shape(1));
    py::array_t<float> lp(N);
    logprobs_forward(lp.mutable_data(), logits.data(), checked(targets, N, "targets"), N, V, temperature);
    return lp;
  }, py::arg("logits"), py::arg("targets"), py::arg("temperature") = 1.0,
     "lp (N) = log softmax(logits / temperature)[target]; 0 where target < 0");
  l.def("logprobs_backward", [](const F& dlp, const F& logits, const I& targets, double temperature) {
    if (logits.ndim() != 2) throw_error("logits: expected (N, V), got ", logits.ndim(), " dimensions");
    const int N = static_cast<int>(logits.shape(0)), V = static_cast<int>(logits.shape(1));
    py::array_t<float> dlogits({N, V});
    logprobs_backward(dlogits.mutable_data(), checked(dlp, N, "dlp"), logits.data(), checked(targets, N, "targets"),
                      N, V, temperature);
    return dlogits;
  }, py::arg("dlp"), py::arg("logits"), py::arg("targets"), py::arg("temperature") = 1.0,
     "dlogits (N, V) = dlp (onehot - softmax) / temperature");
  l.def("sft", [](const F& lp, const F& mask) {
    const long n = lp.size();
    const double loss = sft_loss_forward(lp.data(), checked(mask, n, "mask"), n);
    py::array_t<float> dlp(shape_of(lp));
    sft_loss_backward(dlp.mutable_data(), 1.0, mask.data(), n);
    return py::make_tuple(loss, dlp);
  }, py::arg("lp"), py::arg("mask"), "(loss, dlp): masked mean of -lp (tinyds/posttrain/losses/sft.h)");
  l.def("kl", [](const F& lp, const F& lp_ref, const std::string& estimator) {
    const long n = lp.size();
    py::array_t<float> kl(shape_of(lp)), dlp(shape_of(lp));
    std::vector<float> ones(n, 1.0f);
    kl_forward(kl.mutable_data(), lp.data(), checked(lp_ref, n, "lp_ref"), n, parse_kl(estimator));
    kl_backward(dlp.mutable_data(), ones.data(), lp.data(), lp_ref.data(), n, parse_kl(estimator));
    return py::make_tuple(kl, dlp);
  }, py::arg("lp"), py::arg("lp_ref"), py::arg("estimator") = "k3",
     "(kl, dkl/dlp) per token, estimator k1 | k2 | k3 (tinyds/posttrain/losses/kl.h)");
}

void bind_preference_family(py::module_& l) {
  l.def("distill", [](const F& student, const F& teacher, const I& targets, double alpha, double temperature,
                      const std::string& divergence) {
    if (student.ndim() != 2) throw_error("student_logits: expected (N, V), got ", student.ndim(), " dimensions");
    const int N = static_cast<int>(student.shape(0)), V = static_cast<int>(student.shape(1));
    DistillConfig cfg;
    cfg.alpha = alpha;
    cfg.temperature = temperature;
    if (divergence == "forward_kl") cfg.divergence = DistillDivergence::forward_kl;
    else if (divergence == "reverse_kl") cfg.divergence = DistillDivergence::reverse_kl;
    else throw_error("divergence '", divergence, "': expected forward_kl or reverse_kl");
    const float* t = checked(teacher, static_cast<std::size_t>(N) * V, "teacher_logits");
    const int* y = checked(targets, N, "targets");
    const DistillStats s = distill_loss_forward(student.data(), t, y, N, V, cfg);
    py::array_t<float> d({N, V});
    distill_loss_backward(d.mutable_data(), 1.0, student.data(), t, y, N, V, cfg);
    py::dict st;
    st["loss"] = s.loss; st["kl"] = s.kl; st["ce"] = s.ce;
    return py::make_tuple(st, d);
  }, py::arg("student_logits"), py::arg("teacher_logits"), py::arg("targets"), py::arg("alpha") = 0.5,
     py::arg("temperature") = 2.0, py::arg("divergence") = "forward_kl",
     "(stats {loss, kl, ce}, dstudent_logits) (tinyds/posttrain/losses/distill.h)");
  l.def("reward_model", [](const F& r_w, const F& r_l) {
    const int P = static_cast<int>(r_w.size());
    const RewardModelStats s = reward_model_loss_forward(r_w.data(), checked(r_l, P, "r_l"), P);
    py::array_t<float> dw(P), dl(P);
    reward_model_loss_backward(dw.mutable_data(), dl.mutable_data(), 1.0, r_w.data(), r_l.data(), P);
    py::dict st;
    st["loss"] = s.loss; st["accuracy"] = s.accuracy; st["mean_margin"] = s.mean_margin;
    return py::make_tuple(st, dw, dl);
  }, py::arg("r_w"), py::arg("r_l"), "(stats {loss, accuracy, mean_margin}, dr_w, dr_l): Bradley-Terry loss");
  l.def("dpo", [](const F& lp_w, const F& lp_ref_w, const F& mask_w, const F& lp_l, const F& lp_ref_l,
                  const F& mask_l, double beta, const std::string& loss_type, bool length_normalize) {
    const auto [B, T] = shape2(lp_w, "lp_w");
    const std::size_t n = static_cast<std::size_t>(B) * T;
    DPOConfig cfg;
    cfg.beta = beta;
    if (loss_type == "sigmoid") cfg.loss_type = DPOLossType::sigmoid;
    else if (loss_type == "ipo") cfg.loss_type = DPOLossType::ipo;
    else throw_error("loss_type '", loss_type, "': expected sigmoid or ipo");
    cfg.length_normalize = length_normalize;
    const float *rw = checked(lp_ref_w, n, "lp_ref_w"), *mw = checked(mask_w, n, "mask_w"),
                *l = checked(lp_l, n, "lp_l"), *rl = checked(lp_ref_l, n, "lp_ref_l"), *ml = checked(mask_l, n, "mask_l");
    const DPOStats s = dpo_loss_forward(lp_w.data(), rw, mw, l, rl, ml, B, T, cfg);
    py::array_t<float> dw({B, T}), dl({B, T});
    dpo_loss_backward(dw.mutable_data(), dl.mutable_data(), 1.0, lp_w.data(), rw, mw, l, rl, ml, B, T, cfg);
    py::dict st;
    st["loss"] = s.loss; st["rewards_chosen"] = s.rewards_chosen; st["rewards_rejected"] = s.rewards_rejected;
    st["rewards_margin"] = s.rewards_margin; st["rewards_accuracy"] = s.rewards_accuracy;
    return py::make_tuple(st, dw, dl);
  }, py::arg("lp_w"), py::arg("lp_ref_w"), py::arg("mask_w"), py::arg("lp_l"), py::arg("lp_ref_l"), py::arg("mask_l"),
     py::arg("beta") = 0.1, py::arg("loss_type") = "sigmoid", py::arg("length_normalize") = false,
     "(stats {loss, rewards_chosen, rewards_rejected, rewards_margin, rewards_accuracy}, dlp_w, dlp_l)");
}

void bind_rl_family(py::module_& l) {
  l.def("ppo_rewards", [](const F& lp_old, const F& lp_ref, const F& scores, const F& mask, double kl_coef) {
    const auto [B, T] = shape2(lp_old, "lp_old");
    const std::size_t n = static_cast<std::size_t>(B) * T;
    py::array_t<float> r({B, T});
    ppo_rewards(r.mutable_data(), lp_old.data(), checked(lp_ref, n, "lp_ref"), checked(scores, B, "scores"),
                checked(mask, n, "mask"), B, T, kl_coef);
    return r;
  }, py::arg("lp_old"), py::arg("lp_ref"), py::arg("scores"), py::arg("mask"), py::arg("kl_coef") = 0.05,
     "per-token rewards (B, T): -kl_coef (lp_old - lp_ref), plus the score at each row's last token");
  l.def("gae", [](const F& rewards, const F& values, const F& mask, double gamma, double lam) {
    const auto [B, T] = shape2(rewards, "rewards");
    const std::size_t n = static_cast<std::size_t>(B) * T;
    py::array_t<float> adv({B, T}), ret({B, T});
    compute_gae(adv.mutable_data(), ret.mutable_data(), rewards.data(), checked(values, n, "values"),
                checked(mask, n, "mask"), B, T, gamma, lam);
    return py::make_tuple(adv, ret);
  }, py::arg("rewards"), py::arg("values"), py::arg("mask"), py::arg("gamma") = 1.0, py::arg("lam") = 0.95,
     "(advantages, returns) (B, T) by GAE (tinyds/posttrain/losses/gae.h)");
  l.def("whiten", [](const F& x, const F& mask) {
    const long n = x.size();
    py::array_t<float> out(shape_of(x));
    masked_whiten(out.mutable_data(), x.data(), checked(mask, n, "mask"), n);
    return out;
  }, py::arg("x"), py::arg("mask"), "masked whitening with the unbiased variance (trl masked_whiten)");
  l.def("ppo", [](const F& lp, const F& values, const F& lp_old, const F& values_old, const F& advantages,
                  const F& returns, const F& mask, double cliprange, double cliprange_value, double vf_coef) {
    const long n = lp.size();
    PPOConfig cfg;
    cfg.cliprange = cliprange;
    cfg.cliprange_value = cliprange_value;
    cfg.vf_coef = vf_coef;
    const float *v = checked(values, n, "values"), *lo = checked(lp_old, n, "lp_old"),
                *vo = checked(values_old, n, "values_old"), *a = checked(advantages, n, "advantages"),
                *r = checked(returns, n, "returns"), *m = checked(mask, n, "mask");
    const PPOStats s = ppo_loss_forward(lp.data(), v, lo, vo, a, r, m, n, cfg);
    py::array_t<float> dlp(shape_of(lp)), dv(shape_of(lp));
    ppo_loss_backward(dlp.mutable_data(), dv.mutable_data(), 1.0, lp.data(), v, lo, vo, a, r, m, n, cfg);
    py::dict st;
    st["loss"] = s.loss; st["pg_loss"] = s.pg_loss; st["vf_loss"] = s.vf_loss; st["pg_clipfrac"] = s.pg_clipfrac;
    st["vf_clipfrac"] = s.vf_clipfrac; st["approxkl"] = s.approxkl; st["ratio_mean"] = s.ratio_mean;
    return py::make_tuple(st, dlp, dv);
  }, py::arg("lp"), py::arg("values"), py::arg("lp_old"), py::arg("values_old"), py::arg("advantages"),
     py::arg("returns"), py::arg("mask"), py::arg("cliprange") = 0.2, py::arg("cliprange_value") = 0.2,
     py::arg("vf_coef") = 0.1, "(stats, dlp, dvalues): PPO's clipped policy and value losses (tinyds/posttrain/losses/ppo.h)");
  l.def("grpo_advantages", [](const F& rewards, int num_generations, bool scale_rewards) {
    const int B = static_cast<int>(rewards.size());
    GRPOConfig cfg;
    cfg.num_generations = num_generations;
    cfg.scale_rewards = scale_rewards;
    py::array_t<float> adv(B);
    const GRPOGroupStats s = grpo_advantages(adv.mutable_data(), rewards.data(), B, cfg);
    py::dict st;
    st["num_groups"] = s.num_groups; st["degenerate_groups"] = s.degenerate_groups;
    st["reward_mean"] = s.reward_mean; st["reward_std"] = s.reward_std;
    return py::make_tuple(adv, st);
  }, py::arg("rewards"), py::arg("num_generations"), py::arg("scale_rewards") = true,
     "(advantages (B), stats): per group of G, (R - mean) / (std + 1e-4) (tinyds/posttrain/losses/grpo.h)");
  l.def("grpo", [](const F& lp, const F& lp_old, const std::optional<F>& lp_ref, const F& advantages, const F& mask,
                   int num_generations, double beta, double epsilon, std::optional<double> epsilon_high,
                   const std::string& loss_type, int max_completion_length) {
    const auto [B, T] = shape2(lp, "lp");
    const std::size_t n = static_cast<std::size_t>(B) * T;
    GRPOConfig cfg;
    cfg.num_generations = num_generations;
    cfg.beta = beta;
    cfg.epsilon = epsilon;
    cfg.epsilon_high = epsilon_high;
    cfg.loss_type = parse_grpo_loss(loss_type);
    cfg.max_completion_length = max_completion_length;
    const float* ref = lp_ref ? checked(*lp_ref, n, "lp_ref") : nullptr;
    const float *lo = checked(lp_old, n, "lp_old"), *a = checked(advantages, B, "advantages"),
                *m = checked(mask, n, "mask");
    const GRPOStats s = grpo_loss_forward(lp.data(), lo, ref, a, m, B, T, cfg);
    py::array_t<float> dlp({B, T});
    grpo_loss_backward(dlp.mutable_data(), 1.0, lp.data(), lo, ref, a, m, B, T, cfg);
    py::dict st;
    st["loss"] = s.loss; st["kl"] = s.kl; st["clip_ratio_low"] = s.clip_ratio_low;
    st["clip_ratio_high"] = s.clip_ratio_high; st["clip_ratio"] = s.clip_ratio;
    return py::make_tuple(st, dlp);
  }, py::arg("lp"), py::arg("lp_old"), py::arg("lp_ref"), py::arg("advantages"), py::arg("mask"),
     py::arg("num_generations"), py::arg("beta") = 0.04, py::arg("epsilon") = 0.2,
     py::arg("epsilon_high") = std::nullopt, py::arg("loss_type") = "grpo", py::arg("max_completion_length") = 256,
     "(stats {loss, kl, clip_ratio_low, clip_ratio_high, clip_ratio}, dlp): the GRPO loss (tinyds/posttrain/losses/grpo.h)");
}

}  // namespace

void bind_losses(py::module_& m) {
  py::module_ l = m.def_submodule("losses", "Post-training losses on arrays: value and gradient (tinyds/posttrain).");
  bind_logprob_family(l);
  bind_preference_family(l);
  bind_rl_family(l);
}

}  // namespace tinyds::python
