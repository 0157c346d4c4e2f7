// tests/model/moe_layer_naive_test.cpp — the MoE layer (tinyds/model/moe_layer.h) against a naive per-token loop written
// here: every token goes through each of its chosen experts directly (no sort, no gather, no per-expert GEMM, no
// combine), forward and backward, in plain scalar loops. Also: no token is dropped under a skewed routing, and
// K = E (every expert chosen) equals the dense mixture.
//
// Shapes: N = B*T tokens, C width, E experts, K slots, F expert hidden, S = Ns*F shared hidden.
// Tolerance 1e-12 relative to each tensor's largest entry: both sides compute the same sums of at most a few dozen
// double products, in different orders (GEMM blocking vs scalar loops), so they differ by ~1e-15 relative; a wiring
// mistake (a wrong row, slot or weight, a dropped token) is O(1).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "tests/util/moe_layer_util.h"

using namespace tinyds;
using namespace tinyds::test;

namespace {

constexpr double kExactTol = 1e-12;

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// One SwiGLU FFN on one row: y (C) = w2 (silu(w1 x) * (w3 x)),  w1, w3 (H, C), w2 (C, H).
vec ffn_row(const double* x, const double* w1, const double* w3, const double* w2, int H, int C) {
  vec h(H), y(C, 0.0);
  for (int j = 0; j < H; j++) {
    double a1 = 0, a3 = 0;
    for (int c = 0; c < C; c++) {
      a1 += w1[j * C + c] * x[c];
      a3 += w3[j * C + c] * x[c];
    }
    h[j] = a1 * sigmoid(a1) * a3;
  }
  for (int c = 0; c < C; c++)
    for (int j = 0; j < H; j++) y[c] += w2[c * H + j] * h[j];
  return y;
}

// Its backward for dy (C): dx (C) +=, dw1, dw3 (H, C) +=, dw2 (C, H) +=.
void ffn_row_backward(double* dx, double* dw1, double* dw3, double* dw2, const double* dy, const double* x,
                      const double* w1, const double* w3, const double* w2, int H, int C) {
  for (int j = 0; j < H; j++) {
    double a1 = 0, a3 = 0;
    for (int c = 0; c < C; c++) {
      a1 += w1[j * C + c] * x[c];
      a3 += w3[j * C + c] * x[c];
    }
    const double sg = sigmoid(a1), h = a1 * sg * a3;
    double dh = 0;
    for (int c = 0; c < C; c++) {
      dh += w2[c * H + j] * dy[c];
      dw2[c * H + j] += dy[c] * h;
    }
    const double da1 = dh * a3 * (sg + a1 * sg * (1 - sg)), da3 = dh * a1 * sg;
    for (int c = 0; c < C; c++) {
      dw1[j * C + c] += da1 * x[c];
      dw3[j * C + c] += da3 * x[c];
      dx[c] += w1[j * C + c] * da1 + w3[j * C + c] * da3;
    }
  }
}

struct Naive {
  vec out, du, drouter, dw1, dw3, dw2, dsw1, dsw3, dsw2;
  std::vector<int> idx;
};

// The layer's forward and the backward of L = sum(out * dout), one token at a time, by the DESIGN 4.2 formulas.
// Selection: experts ordered by biased score s + b descending, ties to the lower index (a stable sort).
Naive naive_moe(const MoeFixture& f, const vec& dout) {
  const MoeDims& d = f.d;
  const int C = d.C, E = d.E, K = d.K, F = d.F, S = d.Ns * d.F;
  const double rs = d.route_scale;
  Naive r{vec(f.out.size(), 0.0), vec(f.u.size(), 0.0), vec(f.router.size(), 0.0), vec(f.w1.size(), 0.0),
          vec(f.w3.size(), 0.0), vec(f.w2.size(), 0.0), vec(f.sw1.size(), 0.0), vec(f.sw3.size(), 0.0),
          vec(f.sw2.size(), 0.0), {}};
  for (int n = 0; n < d.N; n++) {
    const double* x = f.u.data() + n * C;
    const double* dy = dout.data() + n * C;
    double* o = r.out.data() + n * C;
    double* dx = r.du.data() + n * C;
    vec s(E);
    double z = 0;
    for (int e = 0; e < E; e++) {
      double l = 0;
      for (int c = 0; c < C; c++) l += f.router[e * C + c] * x[c];
      s[e] = d.score == ScoreFunc::sigmoid ? sigmoid(l) : std::exp(l);  // logits are O(1): no overflow
      z += s[e];
    }
    if (d.score == ScoreFunc::softmax)
      for (double& v : s) v /= z;
    std::vector<int> ord(E);
    std::iota(ord.begin(), ord.end(), 0);
    std::stable_sort(ord.begin(), ord.end(), [&](int a, int b) { return s[a] + f.bias[a] > s[b] + f.bias[b]; });
    double Ssum = 0;
    for (int k = 0; k < K; k++) Ssum += s[ord[k]];
    vec dg(K);
    if (S > 0) {
      const vec y = ffn_row(x, f.sw1.data(), f.sw3.data(), f.sw2.data(), S, C);
      for (int c = 0; c < C; c++) o[c] += y[c];
      ffn_row_backward(dx, r.dsw1.data(), r.dsw3.data(), r.dsw2.data(), dy, x, f.sw1.data(), f.sw3.data(),
                       f.sw2.data(), S, C);
    }
    for (int k = 0; k < K; k++) {
      const int e = ord[k];
      r.idx.push_back(e);
      const double g = rs * s[e] / Ssum;
      const std::size_t off = static_cast<std::size_t>(e) * F * C;
      const vec y = ffn_row(x, f.w1.data() + off, f.w3.data() + off, f.w2.data() + off, F, C);
      vec dyk(C);
      for (int c = 0; c < C; c++) {
        o[c] += g * y[c];
        dg[k] += dy[c] * y[c];
        dyk[c] = g * dy[c];
      }
      ffn_row_backward(dx, r.dw1.data() + off, r.dw3.data() + off, r.dw2.data() + off, dyk.data(), x,
                       f.w1.data() + off, f.w3.data() + off, f.w2.data() + off, F, C);
    }
    // g_k = rs * s_k / S:  dL/ds_m = rs / S * (dg_m - sum_k dg_k s_k / S)   (chosen m only)
    vec ds(E, 0.0);
    double A = 0;
    for (int k = 0; k < K; k++) A += dg[k] * s[ord[k]] / Ssum;
    for (int k = 0; k < K; k++) ds[ord[k]] += rs / Ssum * (dg[k] - A);
    double dsum = 0;
    for (int e = 0; e < E; e++) dsum += ds[e] * s[e];
    for (int e = 0; e < E; e++) {
      const double dl = d.score == ScoreFunc::sigmoid ? ds[e] * s[e] * (1 - s[e]) : s[e] * (ds[e] - dsum);
      for (int c = 0; c < C; c++) {
        r.drouter[e * C + c] += dl * x[c];
        dx[c] += f.router[e * C + c] * dl;
      }
    }
  }
  return r;
}

// max |a - ref| over max(largest |ref|, 1e-3). The floor covers tensors that are zero in exact arithmetic and hold
// only rounding noise on both sides (the router gradient with K = 1, where g = route_scale is a constant).
double rel_err(const vec& a, const vec& ref) {
  double m = 1e-3, diff = 0;
  for (double v : ref) m = std::max(m, std::fabs(v));
  for (std::size_t i = 0; i < ref.size(); i++) diff = std::max(diff, std::fabs(a[i] - ref[i]));
  return diff / m;
}

// Runs the layer forward and backward (dout = R) from zeroed gradients and compares everything with naive_moe.
void compare_with_naive(MoeFixture& fx, const vec& R) {
  fx.forward();
  for (vec* g : {&fx.drouter, &fx.dw1, &fx.dw3, &fx.dw2, &fx.dsw1, &fx.dsw3, &fx.dsw2})
    std::fill(g->begin(), g->end(), 0.0);
  fx.backward(R, 0.0);
  const Naive ref = naive_moe(fx, R);
  CHECK(fx.topk_idx() == ref.idx);
  const std::vector<std::pair<const char*, std::pair<const vec*, const vec*>>> pairs = {
      {"out", {&fx.out, &ref.out}},       {"du", {&fx.du, &ref.du}},       {"router", {&fx.drouter, &ref.drouter}},
      {"experts.w1", {&fx.dw1, &ref.dw1}}, {"experts.w3", {&fx.dw3, &ref.dw3}}, {"experts.w2", {&fx.dw2, &ref.dw2}},
      {"shared.w1", {&fx.dsw1, &ref.dsw1}}, {"shared.w3", {&fx.dsw3, &ref.dsw3}},
      {"shared.w2", {&fx.dsw2, &ref.dsw2}}};
  for (const auto& p : pairs) {
    INFO("tensor ", std::string(p.first));
    CHECK(rel_err(*p.second.first, *p.second.second) < kExactTol);
  }
}

}  // namespace

TEST_CASE("model/moe_layer_naive: forward and backward equal a per-token loop (sigmoid, K 2, route_scale 2.5, bias)") {
  MoeDims d = small_moe_dims();
  d.route_scale = 2.5;
  MoeFixture fx(d, 11);
  fx.bias = randn(d.E, 5, 0.2);
  // A margin keeps the two sides' last-bit differences in the scores from ordering a near tie differently.
  REQUIRE(fx.enforce_gap(1e-6) >= 1e-6);
  compare_with_naive(fx, randn(static_cast<std::size_t>(d.N) * d.C, 12));
}

TEST_CASE("model/moe_layer_naive: K = E (every expert chosen, the dense mixture), softmax scores") {
  MoeDims d = small_moe_dims();
  d.K = d.E;
  d.score = ScoreFunc::softmax;
  MoeFixture fx(d, 13);
  compare_with_naive(fx, randn(static_cast<std::size_t>(d.N) * d.C, 14));
  // Every token used every expert: each slice holds all N tokens.
  std::vector<int> load(d.E);
  moe_layer_load(load.data(), fx.acts(), d);
  for (int e = 0; e < d.E; e++) CHECK(load[e] == d.N);
}

TEST_CASE("model/moe_layer_naive: no shared experts (Ns 0), K 1") {
  MoeDims d = small_moe_dims();
  d.Ns = 0;
  d.K = 1;
  MoeFixture fx(d, 15);  // the shared weight vectors are empty: their pointers may be null, which Ns = 0 allows
  REQUIRE(fx.enforce_gap(1e-6) >= 1e-6);
  compare_with_naive(fx, randn(static_cast<std::size_t>(d.N) * d.C, 16));
  // K = 1: g = route_scale * s / s is a constant, so the router gets no gradient (up to rounding).
  double gmax = 0;
  for (double v : fx.drouter) gmax = std::max(gmax, std::fabs(v));
  CHECK(gmax < 1e-12);
}

TEST_CASE("model/moe_layer_naive: no token is dropped when every token picks the same two experts") {
  MoeDims d = small_moe_dims();
  MoeFixture fx(d, 17);
  fx.bias = {5.0, 5.0, 0.0, 0.0, 0.0, 0.0};  // s in (0, 1): experts 0 and 1 always win, loads N, N, 0, 0, 0, 0
  compare_with_naive(fx, randn(static_cast<std::size_t>(d.N) * d.C, 18));
  const MoeActivations<double>& a = fx.acts();
  const int P = d.N * d.K;
  CHECK(a.offsets[0] == 0);
  CHECK(a.offsets[1] == d.N);
  for (int e = 2; e <= d.E; e++) CHECK(a.offsets[e] == P);
  // Every (token, slot) pair has exactly one sorted row, and pair_pos points back at it.
  std::vector<int> seen(P, 0);
  for (int r = 0; r < P; r++) {
    const int n = a.sorted_token[r], k = a.sorted_slot[r];
    REQUIRE(n >= 0);
    REQUIRE(n < d.N);
    REQUIRE(k >= 0);
    REQUIRE(k < d.K);
    seen[n * d.K + k]++;
    CHECK(a.pair_pos[n * d.K + k] == r);
  }
  CHECK(std::count(seen.begin(), seen.end(), 1) == P);
  CHECK(moe_layer_maxvio(a, d) == doctest::Approx(2.0));  // max load N over mean N*K/E = 2N/6: 3 - 1
}
