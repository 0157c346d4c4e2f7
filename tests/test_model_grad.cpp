// tests/test_model_grad.cpp — the whole `nano` model against central finite differences, in double precision.
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

TEST_CASE("model/whole nano model gradients match finite differences (double)") {
  Config cfg = Config::preset("nano");
  GradCheckResult r = check_model_grads(cfg.model, 2, 9, 6, 42);
  MESSAGE("checked " << r.checked << " elements; worst " << r.max_rel << " in " << r.worst);
  CHECK(r.checked >= 6 * 20);
  CHECK(r.max_rel < 1e-5);
}

TEST_CASE("model/gradients match finite differences for mha and mqa") {
  for (AttentionKind kind : {AttentionKind::mha, AttentionKind::mqa}) {
    Config cfg = Config::preset("nano");
    cfg.model.attention = kind;
    cfg.model.n_kv_head = kind == AttentionKind::mha ? cfg.model.n_head : 1;
    cfg.validate();
    GradCheckResult r = check_model_grads(cfg.model, 2, 7, 3, 7);
    MESSAGE(std::string(attention_kind_name(kind)) << ": worst " << r.max_rel << " in " << r.worst);
    CHECK(r.max_rel < 1e-5);
  }
}

TEST_CASE("model/float and double forward agree") {
  // The float model is what trains; the double model is what the finite differences check. Same weights
  // (float-rounded) must give the same loss to float precision: 1e-5 relative covers accumulated rounding
  // of ~1e-7 per operation across a few hundred operations per output.
  Config cfg = Config::preset("nano");
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

TEST_CASE("model/causality: changing a later token leaves earlier logits unchanged") {
  Config cfg = Config::preset("nano");
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

TEST_CASE("model/whole nano model with Multi-head Latent Attention: gradients match finite differences") {
  Config cfg = Config::preset("nano");
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
