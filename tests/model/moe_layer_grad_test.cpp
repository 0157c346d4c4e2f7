// tests/model/moe_layer_grad_test.cpp — the MoE layer's hand-written backward (tinyds/model/moe_layer.h) against double
// precision central differences of the whole layer, w.r.t. every parameter tensor and the input u, with the routing
// held fixed; with and without the balance losses.
//
// Shapes: N = B*T tokens, C width, E experts, K slots, F expert hidden, S = Ns*F shared hidden.
// Objective: L = sum(out * R) + cbal * balance, so backward runs with dout = R and dbalance = cbal.
//
// Why no perturbation flips the top-K choice: the choice is a step function, so a finite difference across a flip
// would measure a jump, not a gradient. Only router and u reach the scores. Perturbing router[e, c] by h moves
// logit (n, e) by h * u[n, c]; perturbing u[n, c] moves token n's logits by h * router[e, c]. With |u|, |router|
// < 6 (checked) and h = 1e-5 a logit moves < 6e-5 and a score < 3e-5 (sigmoid' <= 1/4; for softmax
// sum_j |ds_i/dx_j| <= 1/2),
// so a gap between the K-th and (K+1)-th biased score moves < 6e-5. enforce_gap() redraws the rows of u until
// every token's gap is >= 0.02, more than 300x that. And every perturbed forward asserts the chosen experts are
// identical to the unperturbed ones (`flips` below must stay 0).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tests/util/moe_layer_util.h"

using namespace tinyds;
using namespace tinyds::test;

namespace {

constexpr double kMinGap = 0.02;  // routing margin, see the file header

double max_abs(const vec& x) {
  double m = 0.0;
  for (double v : x) m = std::max(m, std::fabs(v));
  return m;
}

struct Checked {
  const char* name;
  vec* x;     // the tensor perturbed
  vec* grad;  // where backward puts its gradient
  bool param; // accumulated (+=) if true, written (=) if false
};

// 1. du is WRITTEN (NaN / 12345 pre-fill must vanish, both runs equal) and every parameter gradient ACCUMULATES
//    (two backward calls from zero give exactly twice the first: g + g is exact).
// 2. Analytic vs central differences on a subset of each tensor's elements (every element of the small ones,
//    every 4th of the expert tensors: 10 per expert), tolerance kGradRelTol with floor kGradAbsFloor
//    (tests/util/ops_util.h): h = 1e-5 central differences in double agree with the analytic gradient to <= 4e-8
//    relative here (observed; truncation h^2 L''' / 6 through the SwiGLU and the sigmoid), 25x under the bound,
//    while a wrong or missing term is O(1) relative.
void check_layer_grads(MoeFixture& fx, const vec& R, double cbal) {
  REQUIRE(max_abs(fx.u) < 6.0);
  REQUIRE(max_abs(fx.router) < 6.0);
  fx.forward();
  const std::vector<int> base = fx.topk_idx();
  std::vector<Checked> ts = {{"u", &fx.u, &fx.du, false},          {"router", &fx.router, &fx.drouter, true},
                             {"experts.w1", &fx.w1, &fx.dw1, true},  {"experts.w3", &fx.w3, &fx.dw3, true},
                             {"experts.w2", &fx.w2, &fx.dw2, true},  {"shared.w1", &fx.sw1, &fx.dsw1, true},
                             {"shared.w3", &fx.sw3, &fx.dsw3, true}, {"shared.w2", &fx.sw2, &fx.dsw2, true}};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (auto& t : ts) std::fill(t.grad->begin(), t.grad->end(), t.param ? 0.0 : nan);
  fx.backward(R, cbal);
  std::vector<vec> first;
  for (auto& t : ts) first.push_back(*t.grad);
  std::fill(fx.du.begin(), fx.du.end(), 12345.0);
  fx.backward(R, cbal);
  for (std::size_t k = 0; k < ts.size(); k++) {
    INFO("tensor ", std::string(ts[k].name));
    bool same = true;
    for (std::size_t i = 0; i < first[k].size(); i++)
      same = same && (*ts[k].grad)[i] == (ts[k].param ? 2.0 * first[k][i] : first[k][i]);
    const char* what = ts[k].param ? "parameter gradient did not accumulate (+=)" : "du not written (=)";
    CHECK_MESSAGE(same, what);
  }

  const SingleThreadScope one_thread;  // see tests/util/moe_layer_util.h: hundreds of tiny forwards follow
  int flips = 0;  // perturbed forwards whose chosen experts differ from the unperturbed ones
  auto loss = [&]() {
    const double bal = fx.forward();
    if (fx.topk_idx() != base) flips++;
    return dot(fx.out.data(), R.data(), R.size()) + cbal * bal;
  };
  for (std::size_t k = 0; k < ts.size(); k++) {
    const std::size_t n = ts[k].x->size(), stride = n > 100 ? 4 : 1;
    vec num, ana;
    for (std::size_t i = 0; i < n; i += stride) {
      num.push_back(numeric_grad(loss, ts[k].x->data(), i));
      ana.push_back(first[k][i]);
    }
    const GradReport r = compare_grads(num.data(), ana.data(), num.size(), kGradAbsFloor);
    INFO("tensor ", std::string(ts[k].name), " worst checked element ", r.worst * stride, " rel err ", r.max_rel);
    if (verbose()) MESSAGE("moelayer gradcheck ", std::string(ts[k].name), ": max_rel ", r.max_rel);
    CHECK(r.finite);
    CHECK(r.max_rel < kGradRelTol);
  }
  CHECK(flips == 0);
  fx.forward();  // leave the layer at the unperturbed point
}

}  // namespace

TEST_CASE("model/moe_layer_grad: sigmoid, route_scale 2.5, biased choice, an unused expert: all tensors vs finite diffs") {
  MoeDims d = small_moe_dims();
  d.route_scale = 2.5;
  MoeFixture fx(d, 1);
  fx.bias = randn(d.E, 77, 0.1);
  fx.bias[5] = -10.0;  // sigmoid scores are in (0, 1): expert 5 can never rank in the top K = 2, its slice is empty
  REQUIRE(fx.enforce_gap(kMinGap) >= kMinGap);
  const vec R = randn(static_cast<std::size_t>(d.N) * d.C, 99);
  check_layer_grads(fx, R, 0.0);
  std::vector<int> load(d.E);
  moe_layer_load(load.data(), fx.acts(), d);
  CHECK(load[5] == 0);
  // The unused expert's weights got exactly no gradient (the finite differences above also found zero).
  const std::size_t FC = static_cast<std::size_t>(d.F) * d.C;
  bool zero = true;
  for (std::size_t i = 5 * FC; i < 6 * FC; i++)
    zero = zero && fx.dw1[i] == 0.0 && fx.dw3[i] == 0.0 && fx.dw2[i] == 0.0;
  CHECK(zero);
}

TEST_CASE("model/moe_layer_grad: with the sequence-wise and aux balance losses on (L = sum(out*R) + 1.7 * balance)") {
  MoeDims d = small_moe_dims();
  d.seqaux = true;
  d.alpha_seq = 0.3;  // large (V3 uses 1e-4) so the balance gradient is far above the check's tolerance
  d.aux = true;
  d.alpha_aux = 0.2;
  MoeFixture fx(d, 2);
  REQUIRE(fx.enforce_gap(kMinGap) >= kMinGap);
  CHECK(fx.balance > 0.0);
  const vec R = randn(static_cast<std::size_t>(d.N) * d.C, 98);
  check_layer_grads(fx, R, 1.7);
}

TEST_CASE("model/moe_layer_grad: softmax scores, K 3, Ns 2, both balance losses") {
  MoeDims d = small_moe_dims();
  d.score = ScoreFunc::softmax;
  d.K = 3;
  d.Ns = 2;
  d.seqaux = true;
  d.alpha_seq = 0.5;
  d.aux = true;
  d.alpha_aux = 0.4;
  MoeFixture fx(d, 3);
  for (double& g : fx.router) g *= 3.0;  // softmax scores of 6 experts are ~1/6: spread them so gaps exist
  REQUIRE(fx.enforce_gap(kMinGap) >= kMinGap);
  const vec R = randn(static_cast<std::size_t>(d.N) * d.C, 97);
  check_layer_grads(fx, R, 0.8);
}

TEST_CASE("model/moe_layer_grad: the balance losses alone (dout = 0) reach the router weights and u, nothing else") {
  MoeDims d = small_moe_dims();
  d.seqaux = true;
  d.alpha_seq = 0.5;
  d.aux = true;
  d.alpha_aux = 0.5;
  MoeFixture fx(d, 4);
  REQUIRE(fx.enforce_gap(kMinGap) >= kMinGap);
  const vec R(static_cast<std::size_t>(d.N) * d.C, 0.0);
  check_layer_grads(fx, R, 1.0);
  // The balance losses are functions of the scores only: the router gradient is not zero (the check above is not
  // comparing zeros with zeros), and the experts' weights get exactly nothing.
  CHECK(max_abs(fx.drouter) > 1e-3);
  CHECK(max_abs(fx.dw1) == 0.0);
  CHECK(max_abs(fx.dw2) == 0.0);
  CHECK(max_abs(fx.dsw1) == 0.0);
}
