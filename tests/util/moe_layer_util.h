// tests/moelayer_util.h — a small MoE layer in double precision for the tests/moelayer_*.cpp files:
// its weights, input and bias as vectors, its gradients, and the routing margin that keeps finite differences
// from flipping the top-K choice.
//
// Shapes: N = B*T tokens, C width, E routed experts, K slots, F expert hidden, S = Ns*F shared hidden.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tests/util/ops_util.h"
#include "tinyds/model/moe_layer.h"

namespace tinyds::test {

// Runs the enclosing scope on one OpenMP thread, then restores the previous count. For the hundreds of tiny
// forwards of a finite-difference loop: the router and dispatch ops open a parallel region on every call, and on
// an oversubscribed 2-core CI machine each region can wait milliseconds for a descheduled thread (measured: a
// 0.015 s check took 0.4 to 11 s). The forward ops give the same bits for any thread count.
struct SingleThreadScope {
#ifdef _OPENMP
  int saved = omp_get_max_threads();
  SingleThreadScope() { omp_set_num_threads(1); }
  ~SingleThreadScope() { omp_set_num_threads(saved); }
#endif
};

using vec = std::vector<double>;

// The brief's small dims: N 12 from B 2 x T 6, C 8, E 6, K 2, F 5, Ns 1; no balance loss, no groups.
inline MoeDims small_moe_dims() {
  MoeDims d{};
  d.B = 2; d.T = 6; d.N = 12; d.C = 8; d.E = 6; d.K = 2; d.F = 5; d.Ns = 1;
  d.score = ScoreFunc::sigmoid;
  d.route_scale = 1.0;
  d.n_group = 1; d.topk_group = 1;
  d.seqaux = false; d.alpha_seq = 0.0;
  d.aux = false; d.alpha_aux = 0.0;
  return d;
}

struct MoeFixture {
  MoeDims d;
  vec u;                                  // (N, C)
  vec router, w1, w3, w2, sw1, sw3, sw2;    // (E, C), (E, F, C) x2, (E, C, F), (S, C) x2, (C, S)
  vec bias;                               // (E)
  vec out;                                // (N, C)
  vec du, drouter, dw1, dw3, dw2, dsw1, dsw3, dsw2;  // gradients, same shapes
  MoeBuffers<double> buf;
  double balance = 0.0;                   // the last forward's returned balance loss

  // Normal weights from their own streams; logits u.router_e are O(1) so sigmoid scores spread over (0.1, 0.9).
  explicit MoeFixture(const MoeDims& dims, uint64_t seed = 0) : d(dims) {
    const std::size_t N = d.N, C = d.C, E = d.E, F = d.F, S = static_cast<std::size_t>(d.Ns) * d.F;
    u = randn(N * C, seed * 100 + 1);
    router = randn(E * C, seed * 100 + 2, 0.5);
    w1 = randn(E * F * C, seed * 100 + 3, 0.5);
    w3 = randn(E * F * C, seed * 100 + 4, 0.5);
    w2 = randn(E * C * F, seed * 100 + 5, 0.5);
    sw1 = randn(S * C, seed * 100 + 6, 0.5);
    sw3 = randn(S * C, seed * 100 + 7, 0.5);
    sw2 = randn(C * S, seed * 100 + 8, 0.5);
    bias.assign(E, 0.0);
    out.assign(N * C, 0.0);
    du.assign(N * C, 0.0);
    drouter.assign(router.size(), 0.0); dw1.assign(w1.size(), 0.0); dw3.assign(w3.size(), 0.0);
    dw2.assign(w2.size(), 0.0); dsw1.assign(sw1.size(), 0.0); dsw3.assign(sw3.size(), 0.0);
    dsw2.assign(sw2.size(), 0.0);
  }

  MoeWeights<double> weights() {
    return {router.data(), w1.data(), w3.data(), w2.data(), sw1.data(), sw3.data(), sw2.data()};
  }
  MoeWeights<double> grads() {
    return {drouter.data(), dw1.data(), dw3.data(), dw2.data(), dsw1.data(), dsw3.data(), dsw2.data()};
  }
  MoeActivations<double>& acts() { return buf.activations(d); }

  // Runs the layer on the current u / weights / bias; returns the balance loss (also kept in `balance`).
  double forward() {
    balance = moe_layer_forward(out.data(), acts(), u.data(), weights(), bias.data(), d);
    return balance;
  }
  void backward(const vec& dout, double dbalance) {
    moe_layer_backward(du.data(), grads(), dout.data(), dbalance, acts(), u.data(), weights(), d, buf.scratch(d));
  }
  std::vector<int> topk_idx() {
    const int* p = acts().topk_idx;
    return std::vector<int>(p, p + static_cast<std::size_t>(d.N) * d.K);
  }

  // Token n's routing margin after a forward: the K-th largest biased score s + b minus the (K+1)-th (infinite
  // when K = E: every expert is chosen). No groups here (n_group <= 1).
  double token_gap(int n) {
    if (d.K == d.E) return std::numeric_limits<double>::infinity();
    vec v(d.E);
    for (int e = 0; e < d.E; e++) v[e] = acts().scores[static_cast<std::size_t>(n) * d.E + e] + bias[e];
    std::sort(v.rbegin(), v.rend());
    return v[d.K - 1] - v[d.K];
  }

  // Redraws the rows of u whose routing margin is below min_gap (each redraw from a fresh stream, so the result
  // is deterministic), until every token's margin is at least min_gap. Returns the smallest margin.
  double enforce_gap(double min_gap) {
    const SingleThreadScope one_thread;  // up to hundreds of tiny forwards
    uint64_t stream = 1000;
    double smallest = 0.0;
    for (int round = 0; round < 200; round++) {
      forward();
      smallest = std::numeric_limits<double>::infinity();
      bool redrew = false;
      for (int n = 0; n < d.N; n++) {
        const double g = token_gap(n);
        smallest = std::min(smallest, g);
        if (g >= min_gap) continue;
        const vec row = randn(d.C, stream++);
        std::copy(row.begin(), row.end(), u.begin() + static_cast<std::ptrdiff_t>(n) * d.C);
        redrew = true;
      }
      if (!redrew) break;
    }
    forward();
    return smallest;
  }
};

}  // namespace tinyds::test
