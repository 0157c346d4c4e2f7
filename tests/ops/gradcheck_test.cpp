// tests/ops/gradcheck_test.cpp — every op's backward against finite differences, as ONE table (in the manner of
// ggml's test-backend-ops): each row names an op, the shape it runs at, the tolerance and why, and a function that
// builds the op's inputs and its forward/backward calls. Adding an op means adding a row to op_table().
//
// Every row is checked the same way (run_op_row below, with run_gradcheck from tests/util/ops_util.h):
//   1. the loss L = sum(out * R) with a fixed random R, so dL/dout = R: backward runs with dout = R and every
//      element of every input's gradient is compared with central differences, in double;
//   2. activation gradients are WRITTEN (=), parameter gradients ACCUMULATE (+=);
//   3. the forward against the op's defining formula, computed directly (never by the op itself), and the op's own
//      properties (rows of unused tokens get exactly zero, masked positions cost nothing, in place = out of place).
// Shapes: the small ones these checks have always used (C 8, V 11, B 2, T 5) and sizes that are multiples of
// nothing (N 7, C 13, V 11, T 7), where a blocked or vectorised loop with a mishandled tail would show.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/util/ops_util.h"
#include "tinyds/ops/attention.h"
#include "tinyds/ops/cross_entropy.h"
#include "tinyds/ops/embedding.h"
#include "tinyds/ops/matmul.h"
#include "tinyds/ops/moe_dispatch.h"
#include "tinyds/ops/residual.h"
#include "tinyds/ops/rmsnorm.h"
#include "tinyds/ops/rope.h"
#include "tinyds/ops/swiglu.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;

namespace {

// One op at one shape, ready to check. The functions point into `buffers`, which the OpCheck keeps alive.
struct OpCheck {
  std::vector<GradTensor> tensors;  // what L is differentiated against, each marked written or accumulated
  std::function<double()> loss;     // the forward on the current inputs, returning L = sum(out * R)
  std::function<void()> backward;   // the backward with dout = R
  std::function<void()> checks;     // after loss(): the outputs against the defining formula, and the op's properties
  std::shared_ptr<void> buffers;
};

// A row of the table.
struct OpRow {
  std::string op;                 // the op (and variant) under test
  std::string shape;              // its dims, shown with any failure
  double tol;                     // bound on |num - ana| / max(kGradAbsFloor, |num| + |ana|) per element
  const char* why;                // why that bound
  std::function<OpCheck()> make;  // builds the inputs and the calls
};

// Tolerance reasons (the error model is in tests/util/gradcheck.h; h = 1e-5 central differences in double).
// A bug (a missing term, a wrong sign, a transposed index) misses by O(1) relative, >= 1e5 above either bound.
const char* const kLinear =
    "L is linear in each input: central differences are exact but for rounding eps |L| / h (observed <= 3e-8)";
const char* const kSmooth =
    "smooth: truncation h^2 |L'''| / 6 plus rounding eps |L| / h, observed <= ~1e-9 at these scales";
const char* const kSoftmax =
    "softmax over scores q.k: L''' up to ~100, so truncation ~1e-9, still >= 1e3 below the bound";

std::string dims(std::initializer_list<std::pair<const char*, long>> ds) {
  std::string s;
  for (const auto& [name, value] : ds) s += (s.empty() ? "" : ", ") + std::string(name) + " " + std::to_string(value);
  return s;
}

// ---- embedding: out[n] = wte[tokens[n]] ----
// tokens must repeat some token (their rows' gradients must sum) and leave some row of wte unused.
OpCheck embedding_case(const std::vector<int>& tokens, int C, int V) {
  struct Buf { std::vector<int> tokens; vec wte, R, out, dwte; };
  const int N = static_cast<int>(tokens.size());
  auto b = std::make_shared<Buf>(Buf{tokens, randn(V * C, 1), randn(N * C, 2), vec(N * C), vec(V * C)});
  OpCheck c;
  c.tensors = {{"dwte", &b->wte, &b->dwte, true}};
  c.loss = [b, N, C] {
    embedding_forward(b->out.data(), b->tokens.data(), b->wte.data(), N, C);
    return dot(b->out.data(), b->R.data(), b->out.size());
  };
  c.backward = [b, N, C] { embedding_backward(b->dwte.data(), b->R.data(), b->tokens.data(), N, C); };
  c.checks = [b, N, C, V] {
    for (int n = 0; n < N; n++)
      for (int ch = 0; ch < C; ch++) CHECK(b->out[n * C + ch] == b->wte[b->tokens[n] * C + ch]);  // a copy: exact
    // Rows of tokens never used get exactly zero gradient.
    int unused = 0;
    for (int v = 0; v < V; v++) {
      if (std::count(b->tokens.begin(), b->tokens.end(), v) > 0) continue;
      unused++;
      for (int ch = 0; ch < C; ch++) CHECK(b->dwte[v * C + ch] == 0.0);
    }
    CHECK(unused > 0);  // the row's tokens must leave a row unused, or the check above checks nothing
  };
  c.buffers = b;
  return c;
}

// ---- rmsnorm: out = x / sqrt(mean(x^2) + eps) * w ----
OpCheck rmsnorm_case(int N, int C) {
  struct Buf { vec x, w, R, out, rstd, dx, dw; };
  auto b = std::make_shared<Buf>(Buf{randn(N * C, 1), randn(C, 2, 0.5), randn(N * C, 3), vec(N * C), vec(N),
                                     vec(N * C), vec(C)});
  for (auto& wi : b->w) wi += 1.0;  // weights near 1, as after initialisation
  const double eps = 1e-5;
  OpCheck c;
  c.tensors = {{"dinp", &b->x, &b->dx, false}, {"dweight", &b->w, &b->dw, true}};
  c.loss = [b, N, C, eps] {
    rmsnorm_forward(b->out.data(), b->rstd.data(), b->x.data(), b->w.data(), N, C, eps);
    return dot(b->out.data(), b->R.data(), b->out.size());
  };
  c.backward = [b, N, C] {
    rmsnorm_backward(b->dx.data(), b->dw.data(), b->R.data(), b->x.data(), b->w.data(), b->rstd.data(), N, C);
  };
  c.checks = [b, N, C, eps] {
    for (int n = 0; n < N; n++) {
      const double* x = &b->x[n * C];
      double ms = 0;
      for (int ch = 0; ch < C; ch++) ms += x[ch] * x[ch] / C;
      for (int ch = 0; ch < C; ch++)
        CHECK(b->out[n * C + ch] == doctest::Approx(x[ch] / std::sqrt(ms + eps) * b->w[ch]).epsilon(1e-12));
    }
  };
  c.buffers = b;
  return c;
}

// ---- matmul: out = inp @ weight^T ----
// with_dinp false: backward gets dinp = nullptr (the first layer's input) and must still accumulate dweight.
OpCheck matmul_case(int N, int IC, int OC, bool with_dinp) {
  struct Buf { vec x, W, R, out, dx, dW; };
  auto b = std::make_shared<Buf>(Buf{randn(N * IC, 1), randn(OC * IC, 2), randn(N * OC, 4), vec(N * OC),
                                     vec(N * IC), vec(OC * IC)});
  OpCheck c;
  c.tensors = {{"dweight", &b->W, &b->dW, true}};
  if (with_dinp) c.tensors.push_back({"dinp", &b->x, &b->dx, false});
  c.loss = [b, N, IC, OC] {
    matmul_forward(b->out.data(), b->x.data(), b->W.data(), N, IC, OC);
    return dot(b->out.data(), b->R.data(), b->out.size());
  };
  // A bare nullptr cannot deduce `real`, so the call names the type.
  c.backward = [b, N, IC, OC, with_dinp] {
    matmul_backward<double>(with_dinp ? b->dx.data() : nullptr, b->dW.data(), b->R.data(), b->x.data(), b->W.data(),
                            N, IC, OC);
  };
  c.checks = [b, N, IC, OC] {  // the defining triple loop
    for (int n = 0; n < N; n++)
      for (int o = 0; o < OC; o++) {
        double s = 0;
        for (int i = 0; i < IC; i++) s += b->x[n * IC + i] * b->W[o * IC + i];
        CHECK(b->out[n * OC + o] == doctest::Approx(s).epsilon(1e-12));
      }
  };
  c.buffers = b;
  return c;
}

// ---- rope: each pair (x[2i], x[2i+1]) of a head rotated by (pos0 + t) * theta^(-2i/R) ----
OpCheck rope_case(int B, int T, int H, int R, int pos0) {
  struct Buf { vec x, P, out, dx; };
  const std::size_t n = static_cast<std::size_t>(B) * T * H * R;
  auto b = std::make_shared<Buf>(Buf{randn(n, 1), randn(n, 2), vec(n), vec(n)});
  const double theta = 10000.0;
  OpCheck c;
  c.tensors = {{"dinp", &b->x, &b->dx, false}};
  c.loss = [b, B, T, H, R, pos0, theta, n] {
    rope_forward(b->out.data(), b->x.data(), B, T, H, R, pos0, theta);
    return dot(b->out.data(), b->P.data(), n);
  };
  c.backward = [b, B, T, H, R, pos0, theta] { rope_backward(b->dx.data(), b->P.data(), B, T, H, R, pos0, theta); };
  c.checks = [b, B, T, H, R, pos0, theta] {
    for (int bt = 0; bt < B * T; bt++)
      for (int h = 0; h < H; h++)
        for (int i = 0; i < R / 2; i++) {
          const std::size_t off = (static_cast<std::size_t>(bt) * H + h) * R + 2 * i;
          const double a = (pos0 + bt % T) * std::pow(theta, -2.0 * i / R);
          const double x0 = b->x[off], x1 = b->x[off + 1];
          CHECK(b->out[off] == doctest::Approx(x0 * std::cos(a) - x1 * std::sin(a)).epsilon(1e-12));
          CHECK(b->out[off + 1] == doctest::Approx(x0 * std::sin(a) + x1 * std::cos(a)).epsilon(1e-12));
        }
    // In place (out == inp, dinp == dout) gives the same bits as separate buffers.
    vec y = b->x, g = b->P;
    rope_forward(y.data(), y.data(), B, T, H, R, pos0, theta);
    rope_backward(g.data(), g.data(), B, T, H, R, pos0, theta);
    CHECK(y == b->out);
    CHECK(g == b->dx);
  };
  c.buffers = b;
  return c;
}

// ---- attention: out[b,t,h] = sum_{j<=t} softmax_j(scale q[b,t,h] . k[b,j,g]) v[b,j,g], g = h / (H / Hkv) ----
OpCheck attention_case(int B, int T, int H, int Hkv, int Dk, int Dv) {
  struct Buf { vec q, k, v, R, out, att, dq, dk, dv; };
  const std::size_t nq = static_cast<std::size_t>(B) * T * H * Dk, nk = static_cast<std::size_t>(B) * T * Hkv * Dk;
  const std::size_t nv = static_cast<std::size_t>(B) * T * Hkv * Dv, no = static_cast<std::size_t>(B) * T * H * Dv;
  auto b = std::make_shared<Buf>(Buf{randn(nq, 1), randn(nk, 2), randn(nv, 3), randn(no, 4), vec(no),
                                     vec(static_cast<std::size_t>(B) * H * T * T), vec(nq), vec(nk), vec(nv)});
  const double scale = 1.0 / std::sqrt(static_cast<double>(Dk));
  OpCheck c;
  c.tensors = {{"dq", &b->q, &b->dq, false}, {"dk", &b->k, &b->dk, false}, {"dv", &b->v, &b->dv, false}};
  c.loss = [b, B, T, H, Hkv, Dk, Dv, scale] {
    attention_forward(b->out.data(), b->att.data(), b->q.data(), b->k.data(), b->v.data(), B, T, H, Hkv, Dk, Dv,
                      scale);
    return dot(b->out.data(), b->R.data(), b->out.size());
  };
  c.backward = [b, B, T, H, Hkv, Dk, Dv, scale] {
    attention_backward(b->dq.data(), b->dk.data(), b->dv.data(), b->R.data(), b->q.data(), b->k.data(), b->v.data(),
                       b->att.data(), B, T, H, Hkv, Dk, Dv, scale);
  };
  c.checks = [b, B, T, H, Hkv, Dk, Dv, scale] {  // the definition, one (b, t, h) at a time
    for (int bb = 0; bb < B; bb++)
      for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
          const int g = h / (H / Hkv);
          const double* q = &b->q[((static_cast<std::size_t>(bb) * T + t) * H + h) * Dk];
          std::vector<double> e(t + 1);
          double z = 0;
          for (int j = 0; j <= t; j++) {
            const double* k = &b->k[((static_cast<std::size_t>(bb) * T + j) * Hkv + g) * Dk];
            double s = 0;
            for (int d = 0; d < Dk; d++) s += q[d] * k[d];
            e[j] = std::exp(scale * s);
            z += e[j];
          }
          for (int d = 0; d < Dv; d++) {
            double o = 0;
            for (int j = 0; j <= t; j++)
              o += e[j] / z * b->v[((static_cast<std::size_t>(bb) * T + j) * Hkv + g) * Dv + d];
            const std::size_t at = ((static_cast<std::size_t>(bb) * T + t) * H + h) * Dv + d;
            CHECK(b->out[at] == doctest::Approx(o).epsilon(1e-12));
          }
        }
  };
  c.buffers = b;
  return c;
}

// ---- moe gather and combine: xe[r] = x[sorted_token[r]];  out[n] = sum_k topk_w[n,k] * ffn(xe)[pair_pos[n,k]] ----
// The two dispatch ops around a stand-in expert (ye = xe * s, a fixed per-row scale s), so that x, topk_w and the
// rows' order all reach the loss. pair_pos is a fixed permutation of the P = N*K rows (pair (n, k) at row
// (5 (nK + k)) mod P, 5 prime to P), sorted_token its inverse's token.
OpCheck moe_dispatch_case(int N, int K, int C) {
  const int P = N * K;
  struct Buf { std::vector<int> pair_pos, sorted_token; vec x, w, s, R, xe, ye, out, dx, dw, dye, dxe; };
  auto b = std::make_shared<Buf>(Buf{std::vector<int>(P), std::vector<int>(P), randn(N * C, 1), randn(N * K, 2),
                                     randn(P, 3), randn(N * C, 4), vec(P * C), vec(P * C), vec(N * C), vec(N * C),
                                     vec(N * K), vec(P * C), vec(P * C)});
  for (int i = 0; i < P; i++) {
    b->pair_pos[i] = (5 * i) % P;
    b->sorted_token[b->pair_pos[i]] = i / K;
  }
  OpCheck c;
  c.tensors = {{"dx", &b->x, &b->dx, false}, {"dtopk_w", &b->w, &b->dw, false}};
  c.loss = [b, N, K, C, P] {
    moe_gather_forward(b->xe.data(), b->x.data(), b->sorted_token.data(), P, C);
    for (int r = 0; r < P; r++)
      for (int ch = 0; ch < C; ch++) b->ye[r * C + ch] = b->xe[r * C + ch] * b->s[r];
    moe_combine_forward(b->out.data(), b->ye.data(), b->w.data(), b->pair_pos.data(), N, K, C);
    return dot(b->out.data(), b->R.data(), b->out.size());
  };
  c.backward = [b, N, K, C, P] {
    moe_combine_backward(b->dye.data(), b->dw.data(), b->R.data(), b->ye.data(), b->w.data(), b->pair_pos.data(), N,
                         K, C);
    for (int r = 0; r < P; r++)
      for (int ch = 0; ch < C; ch++) b->dxe[r * C + ch] = b->dye[r * C + ch] * b->s[r];
    moe_gather_backward(b->dx.data(), b->dxe.data(), b->pair_pos.data(), N, K, C);
  };
  c.checks = [b, N, K, C] {  // per token, by the formula
    for (int n = 0; n < N; n++)
      for (int ch = 0; ch < C; ch++) {
        double o = 0;
        for (int k = 0; k < K; k++) o += b->w[n * K + k] * b->x[n * C + ch] * b->s[b->pair_pos[n * K + k]];
        CHECK(b->out[n * C + ch] == doctest::Approx(o).epsilon(1e-12));
      }
  };
  c.buffers = b;
  return c;
}

// ---- swiglu: out = silu(a) * b, silu(a) = a * sigmoid(a) ----
OpCheck swiglu_case(long n) {
  struct Buf { vec a, b, R, out, da, db; };
  auto b = std::make_shared<Buf>(Buf{randn(n, 1, 2.0), randn(n, 2), randn(n, 3), vec(n), vec(n), vec(n)});
  b->a[0] = -30.0;  // far tail of the sigmoid: silu -> 0 smoothly, no NaN
  b->a[1] = 30.0;
  OpCheck c;
  c.tensors = {{"da", &b->a, &b->da, false}, {"db", &b->b, &b->db, false}};
  c.loss = [b, n] {
    swiglu_forward(b->out.data(), b->a.data(), b->b.data(), n);
    return dot(b->out.data(), b->R.data(), n);
  };
  c.backward = [b, n] { swiglu_backward(b->da.data(), b->db.data(), b->R.data(), b->a.data(), b->b.data(), n); };
  c.checks = [b, n] {
    for (long i = 0; i < n; i++)
      CHECK(b->out[i] == doctest::Approx(b->a[i] / (1.0 + std::exp(-b->a[i])) * b->b[i]).epsilon(1e-12));
  };
  c.buffers = b;
  return c;
}

// ---- cross_entropy: losses[n] = -log softmax(logits[n])[targets[n]], 0 where targets[n] < 0 (masked) ----
OpCheck cross_entropy_case(const std::vector<int>& targets, int V) {
  struct Buf { std::vector<int> targets; vec logits, dl, losses, lse, dlogits; };
  const int N = static_cast<int>(targets.size());
  auto b = std::make_shared<Buf>(Buf{targets, randn(N * V, 1, 2.0), randn(N, 2), vec(N), vec(N), vec(N * V)});
  OpCheck c;
  c.tensors = {{"dlogits", &b->logits, &b->dlogits, false}};
  c.loss = [b, N, V] {
    cross_entropy_forward(b->losses.data(), b->lse.data(), b->logits.data(), b->targets.data(), N, V);
    return dot(b->losses.data(), b->dl.data(), N);
  };
  c.backward = [b, N, V] {
    cross_entropy_backward(b->dlogits.data(), b->dl.data(), b->logits.data(), b->lse.data(), b->targets.data(), N, V);
  };
  c.checks = [b, N, V] {
    int masked = 0;
    for (int n = 0; n < N; n++) {
      if (b->targets[n] < 0) {
        masked++;
        CHECK(b->losses[n] == 0.0);
        continue;
      }
      double z = 0;
      for (int v = 0; v < V; v++) z += std::exp(b->logits[n * V + v]);
      CHECK(b->losses[n] == doctest::Approx(-std::log(std::exp(b->logits[n * V + b->targets[n]]) / z)).epsilon(1e-12));
      CHECK(b->lse[n] == doctest::Approx(std::log(z)).epsilon(1e-12));
    }
    CHECK(masked > 0);  // the row's targets must mask a position, or the masking is unchecked
  };
  c.buffers = b;
  return c;
}

// ---- residual: out = a + b ----
OpCheck residual_case(long n) {
  struct Buf { vec a, b, R, out, da, db; };
  auto b = std::make_shared<Buf>(Buf{randn(n, 1), randn(n, 2), randn(n, 3), vec(n), vec(n), vec(n)});
  OpCheck c;
  c.tensors = {{"da", &b->a, &b->da, false}, {"db", &b->b, &b->db, false}};
  c.loss = [b, n] {
    residual_forward(b->out.data(), b->a.data(), b->b.data(), n);
    return dot(b->out.data(), b->R.data(), n);
  };
  c.backward = [b, n] { residual_backward(b->da.data(), b->db.data(), b->R.data(), n); };
  c.checks = [b, n] {
    for (long i = 0; i < n; i++) CHECK(b->out[i] == b->a[i] + b->b[i]);
    // nullptr for either gradient is allowed.
    vec da2(n, 7.0);
    residual_backward(da2.data(), static_cast<double*>(nullptr), b->R.data(), n);
    CHECK(da2 == b->R);
    // add_inplace, the accumulate form used where one activation feeds two branches.
    vec acc = b->a;
    add_inplace(acc.data(), b->b.data(), n);
    for (long i = 0; i < n; i++) CHECK(acc[i] == b->a[i] + b->b[i]);
  };
  c.buffers = b;
  return c;
}

// The table: one row per (op, shape).
std::vector<OpRow> op_table() {
  // Repeated tokens (3 three times, 7 twice) check that their rows' gradients sum; 2, 4, 6, 8 are never used.
  const std::vector<int> tokens10 = {3, 0, 7, 3, 10, 7, 3, 1, 5, 9}, tokens7 = {3, 0, 7, 3, 10, 7, 3};
  const std::vector<int> targets7 = {3, -1, 0, 10, 5, -1, 3};  // -1: masked
  const std::vector<int> targets13 = {6, 0, -1, 2, 6, 5, 1, 4, -1, 3, 0, 6, 2};
  return {
      {"embedding", dims({{"N", 10}, {"C", 8}, {"V", 11}}), kGradRelTol, kLinear,
       [=] { return embedding_case(tokens10, 8, 11); }},
      {"embedding", dims({{"N", 7}, {"C", 13}, {"V", 11}}), kGradRelTol, kLinear,
       [=] { return embedding_case(tokens7, 13, 11); }},
      {"rmsnorm", dims({{"N", 6}, {"C", 8}}), kGradRelTol, kSmooth, [] { return rmsnorm_case(6, 8); }},
      {"rmsnorm", dims({{"N", 7}, {"C", 13}}), kGradRelTol, kSmooth, [] { return rmsnorm_case(7, 13); }},
      {"matmul", dims({{"N", 7}, {"IC", 8}, {"OC", 5}}), kGradRelTol, kLinear,
       [] { return matmul_case(7, 8, 5, true); }},
      {"matmul", dims({{"N", 7}, {"IC", 13}, {"OC", 11}}), kGradRelTol, kLinear,
       [] { return matmul_case(7, 13, 11, true); }},
      {"matmul (dinp nullptr)", dims({{"N", 7}, {"IC", 8}, {"OC", 5}}), kGradRelTol, kLinear,
       [] { return matmul_case(7, 8, 5, false); }},
      {"rope", dims({{"B", 2}, {"T", 5}, {"H", 3}, {"R", 8}, {"pos0", 3}}), kGradRelTol, kLinear,
       [] { return rope_case(2, 5, 3, 8, 3); }},
      {"rope", dims({{"B", 1}, {"T", 7}, {"H", 3}, {"R", 6}, {"pos0", 0}}), kGradRelTol, kLinear,
       [] { return rope_case(1, 7, 3, 6, 0); }},
      {"swiglu", dims({{"n", 40}}), kGradRelTol, kSmooth, [] { return swiglu_case(40); }},
      {"swiglu", dims({{"n", 13}}), kGradRelTol, kSmooth, [] { return swiglu_case(13); }},
      {"cross_entropy", dims({{"N", 7}, {"V", 11}}), kGradRelTol, kSmooth,
       [=] { return cross_entropy_case(targets7, 11); }},
      {"cross_entropy", dims({{"N", 13}, {"V", 7}}), kGradRelTol, kSmooth,
       [=] { return cross_entropy_case(targets13, 7); }},
      {"attention (GQA, Dk != Dv)", dims({{"B", 2}, {"T", 5}, {"H", 4}, {"Hkv", 2}, {"Dk", 8}, {"Dv", 6}}), kGradRelTol,
       kSoftmax, [] { return attention_case(2, 5, 4, 2, 8, 6); }},
      {"attention (MQA)", dims({{"B", 1}, {"T", 7}, {"H", 3}, {"Hkv", 1}, {"Dk", 5}, {"Dv", 3}}), kGradRelTol, kSoftmax,
       [] { return attention_case(1, 7, 3, 1, 5, 3); }},
      {"moe gather + combine", dims({{"N", 6}, {"K", 2}, {"C", 8}}), kGradRelTol, kLinear,
       [] { return moe_dispatch_case(6, 2, 8); }},
      {"moe gather + combine", dims({{"N", 7}, {"K", 3}, {"C", 13}}), kGradRelTol, kLinear,
       [] { return moe_dispatch_case(7, 3, 13); }},
      {"residual", dims({{"n", 24}}), kGradRelTol, kLinear, [] { return residual_case(24); }},
      {"residual", dims({{"n", 13}}), kGradRelTol, kLinear, [] { return residual_case(13); }},
  };
}

void run_op_row(const OpRow& row) {
  INFO("op ", row.op, " at ", row.shape, " (tolerance ", row.tol, ": ", std::string(row.why), ")");
  OpCheck c = row.make();
  c.loss();  // backward reads what the forward saved (rstd, lse)
  run_gradcheck(c.loss, c.backward, c.tensors, row.tol);
  c.checks();  // run_gradcheck leaves the outputs at the unperturbed inputs and the gradients of its second call
}

// One test case per op, so that a failure names the op; each runs the op's rows of the table. The last case checks
// that every row belongs to one of these ops: a row added for a new op without its line here fails it.
const std::vector<std::string> kTableOps = {"embedding", "rmsnorm", "matmul",    "rope",    "swiglu",
                                            "cross_entropy", "attention", "moe gather + combine", "residual"};

void run_rows_of(const std::string& op) {
  int rows = 0;
  for (const OpRow& row : op_table())
    if (row.op.rfind(op, 0) == 0) {
      run_op_row(row);
      rows++;
    }
  REQUIRE(rows > 0);
}

}  // namespace

TEST_CASE("ops/gradcheck: embedding, every shape of the table") { run_rows_of("embedding"); }
TEST_CASE("ops/gradcheck: rmsnorm, every shape of the table") { run_rows_of("rmsnorm"); }
TEST_CASE("ops/gradcheck: matmul, every shape of the table") { run_rows_of("matmul"); }
TEST_CASE("ops/gradcheck: rope, every shape of the table") { run_rows_of("rope"); }
TEST_CASE("ops/gradcheck: swiglu, every shape of the table") { run_rows_of("swiglu"); }
TEST_CASE("ops/gradcheck: cross_entropy, every shape of the table") { run_rows_of("cross_entropy"); }
TEST_CASE("ops/gradcheck: attention, every shape of the table") { run_rows_of("attention"); }
TEST_CASE("ops/gradcheck: moe gather + combine, every shape of the table") { run_rows_of("moe gather + combine"); }
TEST_CASE("ops/gradcheck: residual, every shape of the table") { run_rows_of("residual"); }

TEST_CASE("ops/gradcheck: every row of the table is run by one of the op test cases above") {
  for (const OpRow& row : op_table()) {
    bool listed = false;
    for (const std::string& op : kTableOps) listed = listed || row.op.rfind(op, 0) == 0;
    INFO("row ", row.op, " at ", row.shape);
    CHECK(listed);
  }
}

TEST_CASE("ops/gradcheck: saturated SwiGLU gates give 0 and a, without NaN, in double and float") {
  // Checked apart from the finite differences: out ~ 800 b would raise |L| and with it the rounding noise eps |L| / h
  // of every numeric gradient. e^-a overflows to inf, or the vectorised exp clamps it to a huge finite value: either
  // way silu(-800) = 0 and silu(800) = 800, with no NaN.
  const double big[4] = {-800.0, 800.0, 0.5, -0.25}, g[4] = {1.0, 1.0, 1.0, 1.0};
  double o[4], d1[4], d2[4];
  swiglu_forward(o, big, big, 4);  // b = a, so out = silu(a) * a
  swiglu_backward(d1, d2, g, big, big, 4);
  CHECK(std::fabs(o[0]) < 1e-300);
  CHECK(o[1] == 800.0 * 800.0);
  CHECK(std::fabs(d1[0]) < 1e-300);  // d/da of silu(a) * b vanishes in the left tail
  CHECK(d1[1] == 800.0);             // = b * sigmoid(800) * (1 + 800 (1 - sigmoid(800))) = b
  CHECK(d2[1] == 800.0);             // = silu(800)
  const float bigf[2] = {-100.0f, 100.0f}, gf[2] = {1.0f, 1.0f};
  float of[2], df1[2], df2[2];
  swiglu_forward(of, bigf, bigf, 2);
  swiglu_backward(df1, df2, gf, bigf, bigf, 2);
  for (float x : {of[0], of[1], df1[0], df1[1], df2[0], df2[1]}) CHECK(std::isfinite(x));
  CHECK(of[1] == 10000.0f);
}
