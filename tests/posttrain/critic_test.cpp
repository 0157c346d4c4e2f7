// tests/posttrain/critic_test.cpp — the PPO critic (posttrain/critic.h): value head + trunk gradients against central
// finite differences in double precision, and its optimizer / ledger bookkeeping.
//
// Loss: L = sum_n R[n] V[n] with a fixed random R (B, T), so dL/dV = R exactly and backward(R) must give dL/dparams.
// Tolerance: relative error |num - ana| / max(|num| + |ana|, 1e-7) < 1e-5 per checked element, as in
// tests/model/transformer_test.cpp: with h = 1e-5 in double, truncation ~ h^2 |L'''| ~ 1e-10 and rounding ~ 1e-16 |L| / h ~
// 1e-11, so a correct gradient agrees to far better than 1e-5, while a wrong one (missing b_v term, transposed or
// unscaled dx_L) is off by O(1). The 1e-7 floor keeps exactly-zero gradients (the trunk's output head and final
// norm, which V does not read) from dividing by zero; those must come out ~0 on both sides.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tinyds/core/rng.h"
#include "tinyds/model/config.h"
#include "tinyds/posttrain/critic.h"
#include "tests/util/gradcheck.h"

using namespace tinyds;

namespace {

struct CriticGradResult { double max_rel = 0; std::string worst; int checked = 0; };

CriticGradResult check_critic_grads(const std::string& preset, int per_tensor, uint64_t seed) {
  const ModelConfig mc = Config::preset(preset).model;
  const int B = 2, T = 7, C = mc.d_model, N = B * T;
  Critic<double> critic(mc);
  Transformer<double>& tr = critic.trunk();
  tr.init_weights(seed);
  Rng rng(seed + 1);
  for (std::size_t i = 0; i < tr.num_params(); i++) tr.params()[i] *= 3.0;  // more curvature: a harder check
  for (const TensorSpec& t : tr.layout().tensors())
    if (t.shape.size() == 1)
      for (std::size_t i = 0; i < t.numel; i++) tr.params()[t.offset + i] = 0.5 + rng.uniform();
  // A non-zero head (the default is zero, which would leave the trunk without gradient).
  for (int c = 0; c <= C; c++) critic.head()[c] = rng.normal();
  std::vector<int> tokens(N);
  std::vector<double> R(N);
  for (int i = 0; i < N; i++) {
    tokens[i] = static_cast<int>(rng.randint(0, mc.vocab_size - 1));
    R[i] = rng.normal();
  }
  auto loss = [&]() { return test::dot(critic.forward(tokens.data(), B, T), R.data(), N); };
  critic.zero_grad();
  loss();
  critic.backward(R.data());
  const std::vector<double> trunk_grad(tr.grads(), tr.grads() + tr.num_params());
  const std::vector<double> head_grad(critic.head_grads(), critic.head_grads() + critic.head_size());

  CriticGradResult res;
  auto check = [&](double* x, double ana, const std::string& name) {
    const double num = test::numeric_grad(loss, x, 0);
    const double rel = std::fabs(num - ana) / std::max(std::fabs(num) + std::fabs(ana), 1e-7);
    if (rel > res.max_rel) { res.max_rel = rel; res.worst = name; }
    res.checked++;
  };
  for (int c = 0; c <= C; c++) check(critic.head() + c, head_grad[c], c < C ? "value_head.weight" : "value_head.bias");
  for (const TensorSpec& t : tr.layout().tensors())
    for (int k = 0; k < per_tensor; k++) {
      const std::size_t i = t.offset + static_cast<std::size_t>(rng.randint(0, static_cast<int64_t>(t.numel) - 1));
      check(tr.params() + i, trunk_grad[i], t.name);
    }
  return res;
}

}  // namespace

TEST_CASE("posttrain/critic: value head and trunk gradients match finite differences on nano-dense (double)") {
  const CriticGradResult r = check_critic_grads("nano-dense", 4, 7);
  MESSAGE("checked " << r.checked << " elements; worst relative error " << r.max_rel << " in " << r.worst);
  CHECK(r.checked >= 33 + 4 * 20);  // the whole head (C + 1 = 33) and 4 elements of every trunk tensor
  CHECK(r.max_rel < 1e-5);
}

TEST_CASE("posttrain/critic: gradients match finite differences on the DeepSeek-style nano (MLA, MoE, MTP) (double)") {
  const CriticGradResult r = check_critic_grads("nano", 2, 11);
  MESSAGE("checked " << r.checked << " elements; worst relative error " << r.max_rel << " in " << r.worst);
  CHECK(r.max_rel < 1e-5);
}

TEST_CASE("posttrain/critic: starts at V = 0 and one AdamW step moves the head, ledgered under the critic role") {
  const ModelConfig mc = Config::preset("nano").model;
  Ledger& L = Ledger::global();
  const std::size_t w0 = L.current(Role::critic, Category::weights), g0 = L.current(Role::critic, Category::grads);
  const std::size_t m0 = L.current(Role::critic, Category::adam_m);
  Critic<float> critic(mc);
  critic.trunk().init_weights(3);
  CriticAdamW opt(critic);
  const int B = 2, T = 5, N = B * T;
  std::vector<int> tokens(N, 7);
  const float* v = critic.forward(tokens.data(), B, T);
  for (int n = 0; n < N; n++) CHECK(v[n] == 0.0f);  // zero head: the critic first predicts 0 everywhere
  critic.zero_grad();
  std::vector<float> dv(N, 1.0f);  // L = sum V: pushes every value down
  critic.backward(dv.data());
  CHECK(critic.head_grads()[mc.d_model] == doctest::Approx(N));  // db_v = sum dV
  opt.step(AdamWSettings{1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f});
  CHECK(critic.head()[mc.d_model] == doctest::Approx(-1e-2f).epsilon(1e-3));  // Adam's first step is -lr sign(g)
  v = critic.forward(tokens.data(), B, T);
  CHECK(v[0] < 0.0f);
  // Bytes: trunk params + router biases + head for the weights; params + head for grads and each moment.
  const std::size_t P = critic.trunk().num_params(), Rb = critic.trunk().moe_bias_size(), H = mc.d_model + 1;
  CHECK(L.current(Role::critic, Category::weights) - w0 == 4 * (P + Rb + H));
  CHECK(L.current(Role::critic, Category::grads) - g0 == 4 * (P + H));
  CHECK(L.current(Role::critic, Category::adam_m) - m0 == 4 * (P + H));
}

TEST_CASE("posttrain/critic: a frozen reward-model-shaped critic holds no gradients") {
  const ModelConfig mc = Config::preset("nano-dense").model;
  Ledger& L = Ledger::global();
  const std::size_t g0 = L.current(Role::reward, Category::grads);
  Critic<float> rm(mc, Role::reward);
  std::vector<int> tokens(6, 5);
  rm.forward(tokens.data(), 2, 3);
  CHECK(L.current(Role::reward, Category::grads) == g0);
  CHECK(L.current(Role::reward, Category::weights) > 0);
}
