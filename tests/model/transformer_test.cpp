// tests/model/transformer_test.cpp — the whole `nano` model against central finite differences, in double precision.
//
// For every parameter tensor, a random subset of its elements is perturbed by +-h and the change of the loss is
// compared with the hand-written backward pass. The model is Transformer<double>, so the comparison measures the
// backward pass, not float rounding.
//
// Tolerance: relative error |num - ana| / max(|num| + |ana|, 1e-7) < 1e-5 for every checked element.
// Why: central differences have truncation error O(h^2 f''') ~ 1e-10 * (curvature) and rounding error
// ~ eps_double * |loss| / h ~ 1e-16 * 5 / 1e-5 ~ 5e-11, so correct gradients of magnitude >= 1e-5 agree to ~1e-5
// relative or far better; the 1e-7 floor keeps elements whose gradient is essentially zero from dividing by ~0.
// A wrong backward (a missing term, a transposed weight, a wrong scale) gives relative errors of order 1.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "tinyds/core/rng.h"
#include "tinyds/model/config.h"
#include "tinyds/model/transformer.h"

using namespace tinyds;

namespace {

struct GradCheckResult { double max_rel = 0; std::string worst; int checked = 0; };

GradCheckResult check_model_grads(const ModelConfig& mc, int B, int T, int per_tensor, uint64_t seed) {
  Transformer<double> model(mc);
  model.init_weights(seed);
  // Larger weights than the init make the check harder (more curvature, larger grads in every tensor).
  Rng rng(seed + 1);
  for (std::size_t i = 0; i < model.num_params(); i++) model.params()[i] *= 3.0;
  // Norm gains away from 1 so their gradients are not degenerate.
  for (const TensorSpec& t : model.layout().tensors())
    if (t.shape.size() == 1)
      for (std::size_t i = 0; i < t.numel; i++) model.params()[t.offset + i] = 0.5 + rng.uniform();
  const int N = B * T, V = mc.vocab_size;
  std::vector<int> tokens(N), targets(N);
  for (int i = 0; i < N; i++) {
    tokens[i] = static_cast<int>(rng.randint(0, V - 1));
    targets[i] = (i % 4 == 3) ? -1 : static_cast<int>(rng.randint(0, V - 1));  // every 4th target masked
  }
  model.zero_grad();
  model.forward(tokens.data(), targets.data(), B, T);
  model.backward();
  std::vector<double> analytic(model.grads(), model.grads() + model.num_params());

  GradCheckResult res;
  const double h = 1e-5;
  for (const TensorSpec& t : model.layout().tensors()) {
    double tensor_max = 0;
    for (int k = 0; k < per_tensor; k++) {
      std::size_t i = t.offset + static_cast<std::size_t>(rng.randint(0, static_cast<int64_t>(t.numel) - 1));
      double* p = model.params() + i;
      const double saved = *p;
      *p = saved + h;
      double lp = model.forward(tokens.data(), targets.data(), B, T);
      *p = saved - h;
      double lm = model.forward(tokens.data(), targets.data(), B, T);
      *p = saved;
      double num = (lp - lm) / (2 * h);
      double rel = std::fabs(num - analytic[i]) / std::max(std::fabs(num) + std::fabs(analytic[i]), 1e-7);
      tensor_max = std::max(tensor_max, rel);
      if (rel > res.max_rel) { res.max_rel = rel; res.worst = t.name; }
      res.checked++;
    }
    MESSAGE(t.name << ": max relative error " << tensor_max);
  }
  return res;
}

}  // namespace

TEST_CASE("model/transformer: whole nano model gradients match finite differences (double)") {
  Config cfg = Config::preset("nano-dense");
  GradCheckResult r = check_model_grads(cfg.model, 2, 9, 6, 42);
  MESSAGE("checked " << r.checked << " elements; worst " << r.max_rel << " in " << r.worst);
  CHECK(r.checked >= 6 * 20);
  CHECK(r.max_rel < 1e-5);
}

TEST_CASE("model/transformer: gradients match finite differences for mha and mqa") {
  for (AttentionKind kind : {AttentionKind::mha, AttentionKind::mqa}) {
    Config cfg = Config::preset("nano-dense");
    cfg.model.attention = kind;
    cfg.model.n_kv_head = kind == AttentionKind::mha ? cfg.model.n_head : 1;
    cfg.validate();
    GradCheckResult r = check_model_grads(cfg.model, 2, 7, 3, 7);
    MESSAGE(std::string(attention_kind_name(kind)) << ": worst " << r.max_rel << " in " << r.worst);
    CHECK(r.max_rel < 1e-5);
  }
}

TEST_CASE("model/transformer: float and double forward agree") {
  // The float model is what trains; the double model is what the finite differences check. Same weights
  // (float-rounded) must give the same loss to float precision: 1e-5 relative covers accumulated rounding
  // of ~1e-7 per operation across a few hundred operations per output.
  Config cfg = Config::preset("nano-dense");
  Transformer<float> mf(cfg.model);
  Transformer<double> md(cfg.model);
  mf.init_weights(3);
  for (std::size_t i = 0; i < mf.num_params(); i++) md.params()[i] = mf.params()[i];
  const int B = 2, T = 12, N = B * T;
  std::vector<int> tokens(N), targets(N);
  for (int i = 0; i < N; i++) { tokens[i] = (i * 37) % cfg.model.vocab_size; targets[i] = (i * 11 + 5) % cfg.model.vocab_size; }
  double lf = mf.forward(tokens.data(), targets.data(), B, T);
  double ld = md.forward(tokens.data(), targets.data(), B, T);
  CHECK(std::fabs(lf - ld) / ld < 1e-5);
}

TEST_CASE("model/transformer: changing a later token leaves earlier logits unchanged") {
  Config cfg = Config::preset("nano-dense");
  Transformer<double> m(cfg.model);
  m.init_weights(5);
  const int T = 10, V = cfg.model.vocab_size;
  std::vector<int> a(T), b(T);
  for (int t = 0; t < T; t++) a[t] = b[t] = (t * 13 + 1) % V;
  b[7] = (b[7] + 1) % V;
  m.forward(a.data(), nullptr, 1, T);
  std::vector<double> la(m.logits(), m.logits() + T * V);
  m.forward(b.data(), nullptr, 1, T);
  for (int t = 0; t < T; t++) {
    double diff = 0;
    for (int v = 0; v < V; v++) diff = std::max(diff, std::fabs(la[t * V + v] - m.logits()[t * V + v]));
    if (t < 7) CHECK(diff == 0.0);   // exactly: positions before 7 never read token 7
    else CHECK(diff > 0.0);          // and position 7 onward does depend on it
  }
}

TEST_CASE("model/transformer: whole nano model with Multi-head Latent Attention: gradients match finite differences") {
  Config cfg = Config::preset("nano-dense");
  cfg.model.attention = AttentionKind::mla;
  cfg.model.n_kv_head = cfg.model.n_head;
  cfg.model.q_lora_rank = 8;
  cfg.model.kv_lora_rank = 12;
  cfg.model.rope_dim = 4;
  cfg.validate();
  GradCheckResult r = check_model_grads(cfg.model, 2, 7, 4, 21);
  MESSAGE("mla: checked " << r.checked << " elements; worst " << r.max_rel << " in " << r.worst);
  CHECK(r.checked >= 4 * 24);  // 2 layers x 11 tensors + embed, norm, head
  CHECK(r.max_rel < 1e-5);
}

// ---------------------------------------------------------------------------------------------------------
// The DeepSeek-style model: MLA + MoE (routed + shared experts, every balance loss on, a random router bias) +
// MTP. The top-K choice is piecewise constant in the parameters: a perturbation of h = 1e-5 could flip it where two
// biased scores are within ~1e-5, and the finite difference would then measure a jump, not a gradient. So the test
// records every MoE layer's chosen experts in the unperturbed forward and REQUIRES them unchanged in every
// perturbed forward (it fails loudly rather than silently comparing across a flip).
// ---------------------------------------------------------------------------------------------------------
namespace {

ModelConfig deepseek_nano(int mtp_depth, const std::string& balance) {
  Config cfg = Config::preset("nano-dense");
  ModelConfig& m = cfg.model;
  m.attention = AttentionKind::mla; m.n_kv_head = m.n_head; m.q_lora_rank = 8; m.kv_lora_rank = 12; m.rope_dim = 4;
  m.n_routed_experts = 4; m.n_activated_experts = 2; m.n_shared_experts = 1; m.moe_inter_dim = 16;
  m.n_dense_layers = 1; m.balance = balance; m.seq_aux_alpha = 0.05f; m.aux_alpha = 0.05f;
  m.mtp_depth = mtp_depth; m.mtp_lambda = 0.7f;
  cfg.validate();
  return m;
}

std::vector<int> routing_of(const Transformer<double>& model) {
  std::vector<int> r;
  const ModelConfig& m = model.config();
  const int N = model.last_B() * model.last_T() * m.n_activated_experts;
  for (int l = 0; l < m.n_layer + m.mtp_depth; l++)
    if (model.moe_slot(l) >= 0) {
      const int* idx = model.layer_activations(l).moe.topk_idx;
      r.insert(r.end(), idx, idx + N);
    }
  return r;
}

}  // namespace

TEST_CASE("model/transformer: DeepSeek-style nano (MLA + MoE + MTP): gradients of the whole objective match finite differences") {
  for (int depth : {1, 2}) {
    const ModelConfig mc = deepseek_nano(depth, "bias+seqaux+aux");
    Transformer<double> model(mc);
    model.init_weights(11);
    Rng rng(12);
    for (std::size_t i = 0; i < model.num_params(); i++) model.params()[i] *= 3.0;
    for (const TensorSpec& t : model.layout().tensors())
      if (t.shape.size() == 1)
        for (std::size_t i = 0; i < t.numel; i++) model.params()[t.offset + i] = 0.5 + rng.uniform();
    for (std::size_t i = 0; i < model.moe_bias_size(); i++) model.moe_bias()[i] = 0.2 * (rng.uniform() - 0.5);
    const int B = 2, T = 7, N = B * T, V = mc.vocab_size;
    std::vector<int> tokens(N), targets(N);
    for (int i = 0; i < N; i++) {
      tokens[i] = static_cast<int>(rng.randint(0, V - 1));
      targets[i] = (i % 5 == 2) ? -1 : static_cast<int>(rng.randint(0, V - 1));
    }
    model.zero_grad();
    const double total = model.forward(tokens.data(), targets.data(), B, T);
    // The objective is the sum of its reported parts, and each part is really there.
    CHECK(total == doctest::Approx(model.main_loss() + model.mtp_loss() + model.balance_loss()).epsilon(1e-14));
    CHECK(model.mtp_loss() > 0.1);
    CHECK(model.balance_loss() > 0.01);
    model.backward();
    const std::vector<int> routing = routing_of(model);
    std::vector<double> analytic(model.grads(), model.grads() + model.num_params());
    double worst = 0;
    std::string worst_name;
    int checked = 0;
    const double h = 1e-5;
    for (const TensorSpec& t : model.layout().tensors()) {
      for (int k = 0; k < 4; k++) {
        std::size_t i = t.offset + static_cast<std::size_t>(rng.randint(0, static_cast<int64_t>(t.numel) - 1));
        double* p = model.params() + i;
        const double saved = *p;
        *p = saved + h;
        const double lp = model.forward(tokens.data(), targets.data(), B, T);
        REQUIRE(routing_of(model) == routing);
        *p = saved - h;
        const double lm = model.forward(tokens.data(), targets.data(), B, T);
        REQUIRE(routing_of(model) == routing);
        *p = saved;
        const double num = (lp - lm) / (2 * h);
        // Floor 1e-4 (not the dense test's 1e-7): this objective has ~3x more operations, and the measured rounding
        // noise of the central difference is ~6e-11 absolute (e.g. num -5.62217e-08 vs ana -5.62835e-08, while every
        // element with a gradient above 1e-6 agreed to < 1e-5 relative). The floor turns the 1e-5 bound into 1e-9 absolute
        // for gradients below 1e-4, while every element above 1e-4 is still held to 1e-5 relative; a wrong term gives
        // relative errors of order 1 on the many elements with gradients of 1e-4..1e-1.
        const double rel = std::fabs(num - analytic[i]) / std::max(std::fabs(num) + std::fabs(analytic[i]), 1e-4);
        if (rel > worst) { worst = rel; worst_name = t.name; }
        checked++;
      }
    }
    MESSAGE("mtp depth " << depth << ": checked " << checked << " elements of " << model.layout().tensors().size()
                         << " tensors; worst relative error " << worst << " in " << worst_name);
    CHECK(worst < 1e-5);  // same bound and reasoning as the dense model's check above
  }
}

TEST_CASE("model/transformer: the MoE bias changes which experts are chosen but not the weight formula, and the bias update moves it") {
  const ModelConfig mc = deepseek_nano(0, "bias");
  Transformer<double> model(mc);
  model.init_weights(3);
  const int B = 2, T = 8, N = B * T, V = mc.vocab_size, E = mc.n_routed_experts, K = mc.n_activated_experts;
  std::vector<int> tokens(N);
  for (int i = 0; i < N; i++) tokens[i] = (i * 29 + 3) % V;
  model.forward(tokens.data(), nullptr, B, T);
  const int l = mc.n_dense_layers;  // the first MoE layer
  const std::vector<int> load0 = model.moe_load()[0];
  // A large bias on expert 3 makes every token choose it ...
  for (int e = 0; e < E; e++) model.moe_bias()[e] = e == 3 ? 10.0 : 0.0;
  model.forward(tokens.data(), nullptr, B, T);
  const MoeActivations<double>& a = model.layer_activations(l).moe;
  for (int n = 0; n < N; n++) {
    bool has3 = false;
    double s = 0;
    for (int k = 0; k < K; k++) { has3 = has3 || a.topk_idx[n * K + k] == 3; s += a.scores[n * E + a.topk_idx[n * K + k]]; }
    CHECK(has3);
    // ... while the weights stay the normalised UNBIASED scores of the chosen experts (V3 Eq. 13).
    for (int k = 0; k < K; k++)
      CHECK(a.topk_w[n * K + k] == doctest::Approx(a.scores[n * E + a.topk_idx[n * K + k]] / s).epsilon(1e-12));
  }
  CHECK(model.moe_load()[0][3] == N);
  CHECK(model.moe_load()[0] != load0);
  // The update lowers the overloaded expert by gamma and raises the others that are under the mean.
  model.update_moe_bias();
  CHECK(model.moe_bias()[3] == doctest::Approx(10.0 - mc.bias_update_speed));
  CHECK(model.moe_maxvio()[0] > 0.5);
}

TEST_CASE("model/transformer: a forward without targets leaves the MTP block's router alone (stale routing is never read)") {
  // The MTP modules run only when the forward has targets. A forward without targets (RL, sampling) after one with
  // targets of another shape must neither report the MTP block's stale loads nor move its bias from them: before
  // the fix, MaxVio read garbage offsets here (values in the tens of thousands in a GRPO run) and the MTP block's
  // bias drifted.
  const ModelConfig mc = deepseek_nano(1, "bias");
  Transformer<double> model(mc);
  model.init_weights(4);
  const int V = mc.vocab_size;
  std::vector<int> tokens(3 * 11), targets(3 * 11);
  for (std::size_t i = 0; i < tokens.size(); i++) { tokens[i] = (i * 7 + 1) % V; targets[i] = (i * 5 + 2) % V; }
  model.forward(tokens.data(), targets.data(), 3, 11);
  CHECK(model.moe_maxvio().size() == 2);  // layer 1 and the MTP block
  model.forward(tokens.data(), nullptr, 2, 5);
  const std::vector<double> v = model.moe_maxvio();
  REQUIRE(v.size() == 1);                 // only the main MoE layer ran
  CHECK(v[0] >= 0.0);
  CHECK(v[0] <= mc.n_routed_experts - 1.0);  // MaxVio of real loads is at most E - 1
  const int E = mc.n_routed_experts;
  const std::vector<double> mtp_bias_before(model.moe_bias() + E, model.moe_bias() + 2 * E);
  model.update_moe_bias();
  CHECK(std::vector<double>(model.moe_bias() + E, model.moe_bias() + 2 * E) == mtp_bias_before);
}
