// tests/model/mla_test.cpp — the MLA training block (tinyds/model/mla.h) in double precision:
//   1. its forward against a scalar-loop transcription of the DESIGN 4.1 formulas written here from scratch
//      (no tinyds op is reused, so a wrong head layout, rope pairing or scale in the block cannot cancel out);
//   2. its backward against central finite differences, EVERY element of every parameter tensor and of dx.
//
// Shapes: B 2, T 7, C 16, H 2, D 4, R 4, L 6, Q 8 (tests/mla_util.h), N = B*T.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tests/util/mla_util.h"
#include "tinyds/model/mla.h"

using namespace tinyds;
using namespace tinyds::test;

namespace {

// y (N, out) = x (N, in) @ w^T,  w (out, in)
std::vector<double> ref_linear(const std::vector<double>& x, const double* w, int N, int in, int out) {
  std::vector<double> y(static_cast<std::size_t>(N) * out, 0.0);
  for (int n = 0; n < N; n++)
    for (int o = 0; o < out; o++)
      for (int i = 0; i < in; i++) y[n * out + o] += x[n * in + i] * w[o * in + i];
  return y;
}

// RMSNorm of each row of x (N, w) with gain g (w), in place.
void ref_rmsnorm(std::vector<double>& x, const std::vector<double>& g, int N, int w, double eps) {
  for (int n = 0; n < N; n++) {
    double ss = 0;
    for (int i = 0; i < w; i++) ss += x[n * w + i] * x[n * w + i];
    const double r = 1.0 / std::sqrt(ss / w + eps);
    for (int i = 0; i < w; i++) x[n * w + i] *= r * g[i];
  }
}

// Rotates the R values at v by position pos: interleaved pairs (v[2i], v[2i+1]), frequency theta^(-2i/R).
void ref_rope(double* v, int R, int pos, double theta) {
  for (int i = 0; i < R / 2; i++) {
    const double a = pos * std::pow(theta, -2.0 * i / R), c = std::cos(a), s = std::sin(a);
    const double x0 = v[2 * i], x1 = v[2 * i + 1];
    v[2 * i] = x0 * c - x1 * s;
    v[2 * i + 1] = x0 * s + x1 * c;
  }
}

// DESIGN 4.1, line by line, per token and head. Returns out (N, C).
std::vector<double> ref_mla(const std::vector<double>& x, MlaTensors<double>& w, const MlaDims<double>& d) {
  const int B = d.B, T = d.T, N = B * T, C = d.C, H = d.H, D = d.D, R = d.R, L = d.L, Q = d.Q;
  std::vector<double> cq = ref_linear(x, w.wq_a.data(), N, C, Q);  // c_Q = RMSNorm(W_DQ h)
  ref_rmsnorm(cq, w.q_norm, N, Q, d.eps);
  std::vector<double> q = ref_linear(cq, w.wq_b.data(), N, Q, H * (D + R));  // per head [q_C; q_R]
  std::vector<double> kva = ref_linear(x, w.wkv_a.data(), N, C, L + R);       // [c_KV; k_R] per token
  std::vector<double> ckv(static_cast<std::size_t>(N) * L), kr(static_cast<std::size_t>(N) * R);
  for (int n = 0; n < N; n++) {
    for (int i = 0; i < L; i++) ckv[n * L + i] = kva[n * (L + R) + i];
    for (int i = 0; i < R; i++) kr[n * R + i] = kva[n * (L + R) + L + i];
    const int pos = d.pos0 + n % T;
    ref_rope(&kr[n * R], R, pos, d.theta);                                       // k_R = RoPE(W_KR h)
    for (int h = 0; h < H; h++) ref_rope(&q[(n * H + h) * (D + R) + D], R, pos, d.theta);  // q_R = RoPE(W_QR c_Q)
  }
  ref_rmsnorm(ckv, w.kv_norm, N, L, d.eps);
  std::vector<double> kv = ref_linear(ckv, w.wkv_b.data(), N, L, H * 2 * D);  // per head [k_C; v]
  std::vector<double> o(static_cast<std::size_t>(N) * H * D, 0.0);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int t = 0; t < T; t++) {
        const double* qt = &q[((b * T + t) * H + h) * (D + R)];
        std::vector<double> s(t + 1);
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= t; j++) {  // causal: j <= t
          const double* kc = &kv[((b * T + j) * H + h) * 2 * D];
          double dot = 0;
          for (int e = 0; e < D; e++) dot += qt[e] * kc[e];             // q_C . k_C
          for (int r = 0; r < R; r++) dot += qt[D + r] * kr[(b * T + j) * R + r];  // q_R . k_R (shared key)
          s[j] = dot / std::sqrt(static_cast<double>(D + R));
          mx = std::max(mx, s[j]);
        }
        for (int j = 0; j <= t; j++) sum += (s[j] = std::exp(s[j] - mx));
        for (int j = 0; j <= t; j++)
          for (int e = 0; e < D; e++)  // o = sum_j p_j v[j]; v is the second half of each head's [k_C; v]
            o[((b * T + t) * H + h) * D + e] += s[j] / sum * kv[((b * T + j) * H + h) * 2 * D + D + e];
      }
  return ref_linear(o, w.wo.data(), N, H * D, C);  // out = W_O concat_h o
}

}  // namespace

TEST_CASE("model/mla: forward matches a scalar-loop transcription of DESIGN 4.1 (double)") {
  for (int pos0 : {0, 5}) {  // pos0 > 0: the rope angles of a chunk that starts mid-sequence
    const MlaDims<double> d = small_mla_dims(pos0);
    const int N = d.B * d.T;
    MlaTensors<double> w = random_mla_weights(d, 11);
    std::vector<double> x = randn(static_cast<std::size_t>(N) * d.C, 99), out(static_cast<std::size_t>(N) * d.C);
    MlaWorkspace<double> ws(d);
    mla_forward(out.data(), ws.acts, ws.fwd, x.data(), w.view(), d);
    const std::vector<double> ref = ref_mla(x, w, d);
    double max_diff = 0, max_ref = 0;
    for (std::size_t i = 0; i < ref.size(); i++) {
      max_diff = std::max(max_diff, std::fabs(out[i] - ref[i]));
      max_ref = std::max(max_ref, std::fabs(ref[i]));
    }
    // Same math in another order, in double: rounding ~1e-16 per operation over a few hundred operations per
    // output, so ~1e-14 relative; 1e-12 leaves room and is far below any real mistake (O(1) relative).
    INFO("pos0 ", pos0, ": max |block - reference| ", max_diff, ", max |reference| ", max_ref);
    CHECK(max_ref > 0.1);  // the outputs are not trivially small
    CHECK(max_diff < 1e-12 * max_ref);
  }
}

// Tolerance: tests/ops_util.h's kGradRelTol = 1e-6 relative with an absolute floor of 1e-2 (so 1e-8 absolute
// for entries below 1e-2). Central differences with h = 1e-5 in double have truncation error h^2 |L'''| / 6
// ~ 2e-11 |L'''| and rounding ~ 1e-16 |L| / h ~ 1e-10 for this block's O(1..10) loss; observed: max |num - ana|
// ~3e-9, max relative error ~8e-8 (TINYDS_TEST_VERBOSE=1 prints them), 12x under the bound.
// A wrong backward (a head's rope key gradient not summed, a missing norm term) is off by O(1) relative
// (checked: summing only head 0's k_R gradient fails wkv_a and x with relative error 1).
// run_gradcheck also checks that dx is written (=) and every parameter gradient accumulates (+=).
TEST_CASE("model/mla: backward matches finite differences for every parameter element and dx (double)") {
  for (int pos0 : {0, 3}) {
    const MlaDims<double> d = small_mla_dims(pos0);
    const std::size_t N = static_cast<std::size_t>(d.B) * d.T, NC = N * d.C;
    MlaTensors<double> w = random_mla_weights(d, 7 + pos0), g = zeros_like(w);
    std::vector<double> x = randn(NC, 5 + pos0), dx(NC), out(NC);
    const std::vector<double> proj = randn(NC, 6 + pos0);  // L = sum(out * proj): dL/dout = proj
    MlaWorkspace<double> ws(d);
    auto loss = [&]() {
      mla_forward(out.data(), ws.acts, ws.fwd, x.data(), w.view(), d);
      return dot(out.data(), proj.data(), NC);
    };
    auto backward = [&]() { mla_backward(dx.data(), g.view(), ws.bwd, proj.data(), x.data(), ws.acts, w.view(), d); };
    loss();  // the activations backward reads
    std::vector<GradTensor> ts;
    std::vector<std::vector<double>*> ws_params = w.all(), gs = g.all();
    for (std::size_t i = 0; i < ws_params.size(); i++)
      ts.push_back({mla_tensor_name(static_cast<int>(i)), ws_params[i], gs[i], true});
    ts.push_back({"x", &x, &dx, false});
    INFO("pos0 ", pos0);
    run_gradcheck(loss, backward, ts);
  }
}
