// tests/ops/misc_test.cpp — the float instantiations against the double ones, thread-count determinism,
// cross-entropy edge cases (masks, logits ~ 1000) and input errors.
//
// Shapes here are larger than in the gradient checks (C 96, N 64, T 33) so Eigen's blocked GEMM kernels and the
// OpenMP loops' multi-thread splits are actually exercised.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tests/util/ops_util.h"
#include "tinyds/core/error.h"
#include "tinyds/ops/adamw.h"
#include "tinyds/ops/attention.h"
#include "tinyds/ops/cross_entropy.h"
#include "tinyds/ops/embedding.h"
#include "tinyds/ops/matmul.h"
#include "tinyds/ops/rmsnorm.h"
#include "tinyds/ops/rope.h"
#include "tinyds/ops/swiglu.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;
using fvec = std::vector<float>;

// Inputs are drawn in double and rounded to float once; the double reference then runs on exactly those rounded
// values (widened back), so the comparison measures only the float op's own arithmetic. Float has 2^-24 ~ 6e-8
// unit roundoff; the longest sums here have ~100 terms (error ~ sqrt(100) * 6e-8 ~ 6e-7 of the tensor's scale,
// observed <= 7e-7 with max_rel_diff's rms floor), so 1e-5 is a bound a correct float path meets with >10x margin
// and a wrong one (a double-only code path, a float overflow, a mis-instantiated template) misses.
constexpr double kFloatTol = 1e-5;

static void check_float(const char* name, const fvec& f, const vec& d) {
  const double e = max_rel_diff(f, d);
  if (verbose()) MESSAGE("float vs double ", std::string(name), ": max rel diff ", e);
  CHECK_MESSAGE(e < kFloatTol, std::string(name));
}

static vec rounded(const vec& x) {
  const fvec f = to_float(x);
  return vec(f.begin(), f.end());
}

TEST_CASE("ops/misc: every forward agrees with its double twin") {
  const int N = 64, C = 96, OC = 80, V = 50;
  SUBCASE("matmul, rmsnorm, swiglu, embedding") {
    const vec x = rounded(randn(N * C, 1)), W = rounded(randn(OC * C, 2, 0.1));
    const vec w = rounded(randn(C, 4)), a2 = rounded(randn(N * C, 5, 2.0)), wte = rounded(randn(V * C, 6));
    vec y(N * OC), yn(N * C), rs(N), ys(N * C), ye(N * C);
    fvec yf(N * OC), ynf(N * C), rsf(N), ysf(N * C), yef(N * C);
    std::vector<int> tok(N);
    for (int n = 0; n < N; n++) tok[n] = (n * 7) % V;
    matmul_forward(y.data(), x.data(), W.data(), N, C, OC);
    matmul_forward(yf.data(), to_float(x).data(), to_float(W).data(), N, C, OC);
    check_float("y", yf, y);
    rmsnorm_forward(yn.data(), rs.data(), x.data(), w.data(), N, C, 1e-5);
    rmsnorm_forward(ynf.data(), rsf.data(), to_float(x).data(), to_float(w).data(), N, C, 1e-5f);
    check_float("yn", ynf, yn);
    check_float("rs", rsf, rs);
    // The backward passes of the two GEMM/row-reduction ops as well (dweight sums over N = 64 rows).
    const vec dy = rounded(randn(N * OC, 13)), dyn = rounded(randn(N * C, 14));
    vec dx(N * C), dW(OC * C, 0.0), dxn(N * C), dw(C, 0.0);
    fvec dxf(N * C), dWf(OC * C, 0.0f), dxnf(N * C), dwf(C, 0.0f);
    matmul_backward(dx.data(), dW.data(), dy.data(), x.data(), W.data(), N, C, OC);
    matmul_backward(dxf.data(), dWf.data(), to_float(dy).data(), to_float(x).data(), to_float(W).data(), N, C, OC);
    check_float("dx", dxf, dx);
    check_float("dW", dWf, dW);
    rmsnorm_backward(dxn.data(), dw.data(), dyn.data(), x.data(), w.data(), rs.data(), N, C);
    rmsnorm_backward(dxnf.data(), dwf.data(), to_float(dyn).data(), to_float(x).data(), to_float(w).data(),
                     rsf.data(), N, C);
    check_float("dxn", dxnf, dxn);
    check_float("dw", dwf, dw);
    swiglu_forward(ys.data(), a2.data(), x.data(), N * C);
    swiglu_forward(ysf.data(), to_float(a2).data(), to_float(x).data(), N * C);
    check_float("ys", ysf, ys);
    embedding_forward(ye.data(), tok.data(), wte.data(), N, C);
    embedding_forward(yef.data(), tok.data(), to_float(wte).data(), N, C);
    CHECK(max_rel_diff(yef, ye) == 0.0);  // a copy: exact
  }
  SUBCASE("rope, cross_entropy") {
    const int B = 2, T = 40, H = 3, R = 16;
    const vec x = rounded(randn(B * T * H * R, 7));
    vec y(x.size());
    fvec yf(x.size());
    rope_forward(y.data(), x.data(), B, T, H, R, 100, 10000.0);
    rope_forward(yf.data(), to_float(x).data(), B, T, H, R, 100, 10000.0f);
    check_float("y", yf, y);
    const vec logits = rounded(randn(N * V, 8, 3.0));
    std::vector<int> tg(N);
    for (int n = 0; n < N; n++) tg[n] = n % 5 == 0 ? -1 : (n * 3) % V;
    vec l(N), lse(N);
    fvec lf(N), lsef(N);
    cross_entropy_forward(l.data(), lse.data(), logits.data(), tg.data(), N, V);
    cross_entropy_forward(lf.data(), lsef.data(), to_float(logits).data(), tg.data(), N, V);
    check_float("l", lf, l);
    check_float("lse", lsef, lse);
  }
  SUBCASE("attention forward and backward (GQA, Dk != Dv)") {
    const int B = 2, T = 33, H = 4, Hkv = 2, Dk = 24, Dv = 16;
    const vec q = rounded(randn(B * T * H * Dk, 9)), k = rounded(randn(B * T * Hkv * Dk, 10));
    const vec v = rounded(randn(B * T * Hkv * Dv, 11)), dout = rounded(randn(B * T * H * Dv, 12));
    const double scale = 1.0 / std::sqrt(24.0);
    vec o(B * T * H * Dv), att(B * H * T * T), dq(q.size()), dk(k.size()), dv(v.size());
    fvec of(o.size()), attf(att.size()), dqf(q.size()), dkf(k.size()), dvf(v.size());
    const fvec qf = to_float(q), kf = to_float(k), vf = to_float(v), doutf = to_float(dout);
    attention_forward(o.data(), att.data(), q.data(), k.data(), v.data(), B, T, H, Hkv, Dk, Dv, scale);
    attention_forward(of.data(), attf.data(), qf.data(), kf.data(), vf.data(), B, T, H, Hkv, Dk, Dv,
                      static_cast<float>(scale));
    check_float("o", of, o);
    check_float("att", attf, att);
    attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(), att.data(), B, T,
                       H, Hkv, Dk, Dv, scale);
    attention_backward(dqf.data(), dkf.data(), dvf.data(), doutf.data(), qf.data(), kf.data(), vf.data(),
                       attf.data(), B, T, H, Hkv, Dk, Dv, static_cast<float>(scale));
    check_float("dq", dqf, dq);
    check_float("dk", dkf, dk);
    check_float("dv", dvf, dv);
  }
}

// DESIGN section 3: the CPU reference is deterministic for a fixed seed and thread count. The ops with a reduction
// across rows (rmsnorm dweight, embedding dwte, global_norm) or a parallel loop over heads (attention) go further:
// the same bits for ANY thread count, which this test checks with 1 and 2 threads.
TEST_CASE("ops/misc: 1 and 2 threads give identical bits") {
#ifndef _OPENMP
  MESSAGE("built without OpenMP: single-threaded, nothing to compare");
#else
  const int saved = omp_get_max_threads();
  const int N = 300, C = 200, V = 37;
  const fvec x = to_float(randn(N * C, 1)), w = to_float(randn(C, 2)), dy = to_float(randn(N * C, 3));
  std::vector<int> tok(N);
  for (int n = 0; n < N; n++) tok[n] = (n * 13) % V;  // many repeats: rows of dwte sum several dout rows
  const int B = 3, T = 40, H = 4, Hkv = 2, Dk = 16, Dv = 8;
  const fvec q = to_float(randn(B * T * H * Dk, 4)), k = to_float(randn(B * T * Hkv * Dk, 5));
  const fvec v = to_float(randn(B * T * Hkv * Dv, 6)), dout = to_float(randn(B * T * H * Dv, 7));

  struct Result {
    fvec dx, dw, dwte, out, att, dq, dk, dv;
    double norm;
  };
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    Result r{fvec(N * C), fvec(C, 0.0f), fvec(V * C, 0.0f), fvec(B * T * H * Dv), fvec(B * H * T * T),
             fvec(q.size()), fvec(k.size()), fvec(v.size()), 0.0};
    fvec y(N * C), rstd(N);
    rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5f);
    rmsnorm_backward(r.dx.data(), r.dw.data(), dy.data(), x.data(), w.data(), rstd.data(), N, C);
    embedding_backward(r.dwte.data(), dy.data(), tok.data(), N, C);
    attention_forward(r.out.data(), r.att.data(), q.data(), k.data(), v.data(), B, T, H, Hkv, Dk, Dv, 0.25f);
    attention_backward(r.dq.data(), r.dk.data(), r.dv.data(), dout.data(), q.data(), k.data(), v.data(),
                       r.att.data(), B, T, H, Hkv, Dk, Dv, 0.25f);
    fvec big = to_float(randn(70000, 8));  // > 4 chunks of global_norm
    r.norm = global_norm(big.data(), big.size());
    return r;
  };
  const Result r1 = run(1), r2 = run(2);
  omp_set_num_threads(saved);
  CHECK(r1.dx == r2.dx);
  CHECK(r1.dw == r2.dw);
  CHECK(r1.dwte == r2.dwte);
  CHECK(r1.out == r2.out);
  CHECK(r1.att == r2.att);
  CHECK(r1.dq == r2.dq);
  CHECK(r1.dk == r2.dk);
  CHECK(r1.dv == r2.dv);
  CHECK(r1.norm == r2.norm);
#endif
}

TEST_CASE("ops/misc: masked rows, logits ~ 1000 stay finite and shift-invariant") {
  const int N = 6, V = 11;
  const std::vector<int> tg = {4, -1, 0, -1, 10, 7};
  const vec base = randn(N * V, 1, 2.0);
  vec big = base;
  for (auto& x : big) x += 1000.0;  // exp(1000) overflows double; max subtraction must avoid it
  const vec dl(N, 1.0 / 4);          // mean over the 4 unmasked rows
  vec l0(N), lse0(N), l1(N), lse1(N), d0(N * V), d1(N * V);
  cross_entropy_forward(l0.data(), lse0.data(), base.data(), tg.data(), N, V);
  cross_entropy_forward(l1.data(), lse1.data(), big.data(), tg.data(), N, V);
  cross_entropy_backward(d0.data(), dl.data(), base.data(), lse0.data(), tg.data(), N, V);
  cross_entropy_backward(d1.data(), dl.data(), big.data(), lse1.data(), tg.data(), N, V);
  for (int n = 0; n < N; n++) {
    CHECK(std::isfinite(l1[n]));
    CHECK(lse1[n] == doctest::Approx(lse0[n] + 1000.0).epsilon(1e-14));
    // Softmax is invariant to a constant shift; the loss loses only the rounding of x + 1000 (~1e-13 absolute).
    CHECK(l1[n] == doctest::Approx(l0[n]).epsilon(1e-10));
    double rowsum = 0;
    for (int v = 0; v < V; v++) {
      CHECK(std::isfinite(d1[n * V + v]));
      CHECK(d1[n * V + v] == doctest::Approx(d0[n * V + v]).epsilon(1e-10));
      rowsum += d1[n * V + v];
      if (tg[n] < 0) CHECK(d1[n * V + v] == 0.0);  // masked: zero gradient row
    }
    CHECK(rowsum == doctest::Approx(0.0).epsilon(1e-14));  // softmax - onehot sums to 0 (and 0 when masked)
    if (tg[n] < 0) CHECK(l1[n] == 0.0);
  }
  // Float: logits ~ 1000 (float spacing there is 6e-5) still give finite losses and gradients.
  const fvec bigf = to_float(big), dlf = to_float(dl);
  fvec lf(N), lsef(N), df(N * V);
  cross_entropy_forward(lf.data(), lsef.data(), bigf.data(), tg.data(), N, V);
  cross_entropy_backward(df.data(), dlf.data(), bigf.data(), lsef.data(), tg.data(), N, V);
  for (float x : lf) CHECK(std::isfinite(x));
  for (float x : df) CHECK(std::isfinite(x));
}

TEST_CASE("ops/misc: bad inputs are reported with where and what") {
  auto message_of = [](auto&& f) {
    try {
      f();
    } catch (const tinyds::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  vec logits(3 * 4), l(3), lse(3);
  const std::vector<int> bad_targets = {1, 2, 4};  // 4 is outside V = 4
  std::string m =
      message_of([&] { cross_entropy_forward(l.data(), lse.data(), logits.data(), bad_targets.data(), 3, 4); });
  CHECK(m.find("targets[2] = 4") != std::string::npos);
  const std::vector<int> bad_tokens = {0, -3};
  vec out(2 * 4), wte(5 * 4);
  m = message_of([&] { embedding_forward(out.data(), bad_tokens.data(), wte.data(), 2, 4); });
  CHECK(m.find("tokens[1] = -3") != std::string::npos);
  vec x(2 * 5);
  m = message_of([&] { rope_forward(x.data(), x.data(), 1, 2, 1, 5, 0, 10000.0); });
  CHECK(m.find("R = 5") != std::string::npos);
}
