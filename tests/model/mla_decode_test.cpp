// tests/model/mla_decode_test.cpp — kv-cache decoding equals the full-sequence forward, at EVERY position.
//
// For each attention kind, the full causal forward runs on T tokens; then the same tokens are decoded one at a
// time (position 0, 1, ..., T-1) through a kv-cache, and each step's output must equal the full forward's output
// row at that position. MLA: naive and absorbed paths against mla_forward; MHA / GQA / MQA: dense decode against
// the dense attention path assembled here from the ops (as Transformer::layer_forward does it).
// The cache is filled with NaN before decoding, so a step that reads a row it has not written yet (a position
// after the current one, or a wrong layer's rows) poisons its output and fails the check.
//
// Shapes: B 2, T 7, C 16; MLA H 2, D 4, R 4, L 6, Q 8; dense H 4, D 4, Hkv 4 / 2 / 1.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "tests/util/mla_util.h"
#include "tinyds/model/decode_dense.h"
#include "tinyds/model/kv_cache.h"
#include "tinyds/model/mla_decode.h"
#include "tinyds/ops/attention.h"
#include "tinyds/ops/matmul.h"
#include "tinyds/ops/rope.h"

using namespace tinyds;
using namespace tinyds::test;

namespace {

// Tolerances, relative to max |full output|. double: the same math in another order (GEMM vs loops, another
// softmax summation), ~1e-16 per operation over ~100 operations: 1e-12 is safe (observed <= 6.4e-16
// with max |full| ~2). float: ~6e-8 per operation, observed <= 3.6e-7 (~1.7e-7 of max |full|), so 1e-5 is
// 50x above it. A wrong path (W_UK and W_UV swapped, a stale or missing
// cached row, a wrong rope position) misses by O(1).
template <typename real>
double decode_tol() { return sizeof(real) == sizeof(double) ? 1e-12 : 1e-5; }

template <typename real>
std::string type_name() { return sizeof(real) == sizeof(double) ? "double" : "float"; }

template <typename real>
void fill_nan(KvCache<real>& cache) {
  std::fill(cache.data(), cache.data() + cache.numel(), std::numeric_limits<real>::quiet_NaN());
}

// x (B, C) = row t of each sequence of xs (B, T, C)
template <typename real>
std::vector<real> token_rows(const std::vector<real>& xs, int B, int T, int C, int t) {
  std::vector<real> x(static_cast<std::size_t>(B) * C);
  for (int b = 0; b < B; b++)
    for (int c = 0; c < C; c++) x[b * C + c] = xs[(static_cast<std::size_t>(b) * T + t) * C + c];
  return x;
}

// prompt (B, P, C) = the first P tokens of each sequence of xs (B, T, C)
template <typename real>
std::vector<real> first_tokens(const std::vector<real>& xs, int B, int T, int C, int P) {
  std::vector<real> prompt(static_cast<std::size_t>(B) * P * C);
  for (int b = 0; b < B; b++)
    std::copy(xs.begin() + static_cast<long>(b) * T * C, xs.begin() + (static_cast<long>(b) * T + P) * C,
              prompt.begin() + static_cast<long>(b) * P * C);
  return prompt;
}

// max over b, c of |step[b, c] - full[b, t, c]|; NaN-safe (a NaN difference counts as infinite).
template <typename real>
double row_diff(const std::vector<real>& step, const std::vector<real>& full, int B, int T, int C, int t) {
  double m = 0;
  for (int b = 0; b < B; b++)
    for (int c = 0; c < C; c++) {
      const std::size_t at = (static_cast<std::size_t>(b) * T + t) * C + c;
      const double diff = std::fabs(double(step[b * C + c]) - double(full[at]));
      m = std::isnan(diff) ? std::numeric_limits<double>::infinity() : std::max(m, diff);
    }
  return m;
}

template <typename real>
double max_abs(const std::vector<real>& v) {
  double m = 0;
  for (real x : v) m = std::max(m, std::fabs(double(x)));
  return m;
}

template <typename real>
void check_mla_decode() {
  const MlaDims<double> dd = small_mla_dims();
  const MlaDims<real> d = cast_dims<real>(dd);
  const int B = d.B, T = d.T, C = d.C;
  MlaTensors<double> w64 = random_mla_weights(dd, 21);
  MlaTensors<real> w = cast_tensors<real>(w64);
  const std::vector<double> x64 = randn(static_cast<std::size_t>(B) * T * C, 22);
  const std::vector<real> xs(x64.begin(), x64.end());
  std::vector<real> full(xs.size());
  MlaWorkspace<real> ws(d);
  mla_forward(full.data(), ws.acts, ws.fwd, xs.data(), w.view(), d);

  // Two layers, decode into layer 1: layer 0 stays NaN, so a wrong layer offset shows up.
  KvCacheDims cd;
  cd.n_layer = 2; cd.B = B; cd.Tmax = T + 2; cd.L = d.L; cd.R = d.R;
  KvCache<real> naive_cache(KvCacheKind::mla, cd), absorbed_cache(KvCacheKind::mla, cd);
  fill_nan(naive_cache);
  fill_nan(absorbed_cache);
  MlaDims<real> step = d;
  step.T = 1;
  double worst_naive = 0, worst_absorbed = 0, worst_cache = 0;
  std::vector<real> out_n(static_cast<std::size_t>(B) * C), out_a(out_n.size());
  for (int t = 0; t < T; t++) {
    const std::vector<real> x = token_rows(xs, B, T, C, t);
    mla_decode_naive(out_n.data(), x.data(), w.view(), step, naive_cache, 1, t);
    mla_decode_absorbed(out_a.data(), x.data(), w.view(), step, absorbed_cache, 1, t);
    const double dn = row_diff(out_n, full, B, T, C, t), da = row_diff(out_a, full, B, T, C, t);
    INFO("position ", t, ": naive ", dn, ", absorbed ", da);
    CHECK(dn <= decode_tol<real>() * max_abs(full));
    CHECK(da <= decode_tol<real>() * max_abs(full));
    worst_naive = std::max(worst_naive, dn);
    worst_absorbed = std::max(worst_absorbed, da);
  }
  // The cache holds exactly the training block's c_KV and k_R rows (the only things MLA caches).
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      for (int i = 0; i < d.L; i++)
        worst_cache = std::max(worst_cache, std::fabs(double(absorbed_cache.ckv(1)[(b * cd.Tmax + t) * d.L + i]) -
                                                      double(ws.acts.ckv[(b * T + t) * d.L + i])));
      for (int i = 0; i < d.R; i++)
        worst_cache = std::max(worst_cache, std::fabs(double(naive_cache.kr(1)[(b * cd.Tmax + t) * d.R + i]) -
                                                      double(ws.acts.kr[(b * T + t) * d.R + i])));
    }
  if (verbose())  // TINYDS_TEST_VERBOSE=1 prints the observed differences
    MESSAGE("MLA decode (", type_name<real>(), "): max |step - full| naive ", worst_naive, ", absorbed ",
            worst_absorbed, " (max |full| ", max_abs(full), "); cache rows vs forward ", worst_cache);
  // c_KV is RMS-normed (entries ~1) and k_R is a rotation of an O(1) projection: same tolerance, absolute.
  CHECK(worst_cache <= decode_tol<real>());
}

// The dense attention sublayer over the whole sequence, from the ops: out (B, T, C) from x (B, T, C).
// k_out, v_out (B, T, Hkv, D), if given, receive the RoPE'd keys and the values (what a prefill caches).
template <typename real>
std::vector<real> dense_full(const std::vector<real>& x, const DenseAttnParams<real>& p, const DenseAttnDims<real>& d,
                             int T, std::vector<real>* k_out = nullptr, std::vector<real>* v_out = nullptr) {
  const int N = d.B * T, H = d.H, Hkv = d.Hkv, D = d.D;
  std::vector<real> q(static_cast<std::size_t>(N) * H * D), k(static_cast<std::size_t>(N) * Hkv * D), v(k.size()),
      att(static_cast<std::size_t>(d.B) * H * T * T), o(q.size()), out(static_cast<std::size_t>(N) * d.C);
  matmul_forward(q.data(), x.data(), p.wq, N, d.C, H * D);
  matmul_forward(k.data(), x.data(), p.wk, N, d.C, Hkv * D);
  matmul_forward(v.data(), x.data(), p.wv, N, d.C, Hkv * D);
  rope_forward(q.data(), q.data(), d.B, T, H, D, 0, d.theta);
  rope_forward(k.data(), k.data(), d.B, T, Hkv, D, 0, d.theta);
  attention_forward(o.data(), att.data(), q.data(), k.data(), v.data(), d.B, T, H, Hkv, D, D,
                    real(1) / std::sqrt(real(D)));
  matmul_forward(out.data(), o.data(), p.wo, N, H * D, d.C);
  if (k_out) *k_out = k;
  if (v_out) *v_out = v;
  return out;
}

template <typename real>
void check_dense_decode(KvCacheKind kind, int Hkv) {
  const int B = 2, T = 7, C = 16, H = 4, D = 4;
  const DenseAttnDims<real> d{B, C, H, Hkv, D, real(10000)};
  auto mat = [](std::size_t out, std::size_t in, uint64_t s) {
    std::vector<double> m = randn(out * in, s, 1.0 / std::sqrt(double(in)));
    return std::vector<real>(m.begin(), m.end());
  };
  const std::vector<real> wq = mat(H * D, C, 31), wk = mat(Hkv * D, C, 32), wv = mat(Hkv * D, C, 33);
  const std::vector<real> wo = mat(C, H * D, 34);
  const DenseAttnParams<real> p{wq.data(), wk.data(), wv.data(), wo.data()};
  const std::vector<double> x64 = randn(static_cast<std::size_t>(B) * T * C, 35);
  const std::vector<real> xs(x64.begin(), x64.end());
  const std::vector<real> full = dense_full(xs, p, d, T);

  KvCacheDims cd;
  cd.n_layer = 3; cd.B = B; cd.Tmax = T + 1; cd.H = H; cd.n_kv_head = Hkv; cd.D = D;
  KvCache<real> cache(kind, cd);
  REQUIRE(cache.heads() == Hkv);
  fill_nan(cache);
  double worst = 0;
  std::vector<real> out(static_cast<std::size_t>(B) * C);
  for (int t = 0; t < T; t++) {
    const std::vector<real> x = token_rows(xs, B, T, C, t);
    dense_attention_decode(out.data(), x.data(), p, d, cache, 2, t);
    const double diff = row_diff(out, full, B, T, C, t);
    INFO(std::string(kv_cache_kind_name(kind)), " position ", t, ": ", diff);
    CHECK(diff <= decode_tol<real>() * max_abs(full));
    worst = std::max(worst, diff);
  }
  // Prefill the first P positions from the full path's k and v over the prompt, decode the rest: same rows.
  const int P = 3;
  std::vector<real> kp, vp;
  dense_full(first_tokens(xs, B, T, C, P), p, d, P, &kp, &vp);
  KvCache<real> prefilled(kind, cd);
  fill_nan(prefilled);
  prefilled.write_rows(1, kp.data(), vp.data(), P, 0);
  for (int t = P; t < T; t++) {
    const std::vector<real> x = token_rows(xs, B, T, C, t);
    dense_attention_decode(out.data(), x.data(), p, d, prefilled, 1, t);
    INFO(std::string(kv_cache_kind_name(kind)), " after prefill, position ", t);
    CHECK(row_diff(out, full, B, T, C, t) <= decode_tol<real>() * max_abs(full));
  }
  if (verbose())
    MESSAGE(std::string(kv_cache_kind_name(kind)), " decode (", type_name<real>(), "): max |step - full| ", worst,
            " (max |full| ", max_abs(full), ")");
}

// Prefill then decode: the first P tokens go through the full forward and into the cache with write_rows, the rest
// are decoded one by one; each decoded row must equal the full forward over all T tokens at that position.
template <typename real>
void check_prefill_then_decode() {
  const MlaDims<double> dd = small_mla_dims();
  const int B = dd.B, T = dd.T, C = dd.C, P = 4;
  MlaTensors<double> w64 = random_mla_weights(dd, 41);
  MlaTensors<real> w = cast_tensors<real>(w64);
  const std::vector<double> x64 = randn(static_cast<std::size_t>(B) * T * C, 42);
  const std::vector<real> xs(x64.begin(), x64.end());
  std::vector<real> full(xs.size()), prompt(static_cast<std::size_t>(B) * P * C), pout(prompt.size());
  MlaDims<real> d = cast_dims<real>(dd);
  MlaWorkspace<real> ws(d);
  mla_forward(full.data(), ws.acts, ws.fwd, xs.data(), w.view(), d);
  prompt = first_tokens(xs, B, T, C, P);
  MlaDims<real> dp = d;
  dp.T = P;
  MlaWorkspace<real> wp(dp);
  mla_forward(pout.data(), wp.acts, wp.fwd, prompt.data(), w.view(), dp);
  KvCacheDims cd;
  cd.B = B; cd.Tmax = T; cd.L = d.L; cd.R = d.R;
  KvCache<real> cache(KvCacheKind::mla, cd);
  fill_nan(cache);
  cache.write_rows(0, wp.acts.ckv, wp.acts.kr, P, 0);
  MlaDims<real> step = d;
  step.T = 1;
  std::vector<real> out(static_cast<std::size_t>(B) * C);
  for (int t = P; t < T; t++) {
    const std::vector<real> x = token_rows(xs, B, T, C, t);
    // alternate the two paths: they share the cache format, so either may continue the other's cache
    if (t % 2) mla_decode_naive(out.data(), x.data(), w.view(), step, cache, 0, t);
    else mla_decode_absorbed(out.data(), x.data(), w.view(), step, cache, 0, t);
    INFO("position ", t);
    CHECK(row_diff(out, full, B, T, C, t) <= decode_tol<real>() * max_abs(full));
  }
  CHECK_THROWS_AS(cache.write_rows(0, wp.acts.ckv, wp.acts.kr, P, T - P + 1), Error);  // would pass Tmax
}

}  // namespace

TEST_CASE("model/mla_decode: prefill from the full forward, then naive and absorbed decode continue it") {
  check_prefill_then_decode<double>();
  check_prefill_then_decode<float>();
}

TEST_CASE("model/mla_decode: naive and absorbed decode equal the full forward at every position (double)") {
  check_mla_decode<double>();
}

TEST_CASE("model/mla_decode: naive and absorbed decode equal the full forward at every position (float)") {
  check_mla_decode<float>();
}

TEST_CASE("model/mla_decode: mla/mha, gqa and mqa decode equal the dense attention path at every position") {
  // H = 4 query heads: MHA 4 kv heads, GQA 2 (groups of 2), MQA 1
  for (auto [kind, hkv] : {std::pair{KvCacheKind::mha, 4}, std::pair{KvCacheKind::gqa, 2},
                           std::pair{KvCacheKind::mqa, 1}}) {
    check_dense_decode<double>(kind, hkv);
    check_dense_decode<float>(kind, hkv);
  }
}

TEST_CASE("model/mla_decode: decoders reject a wrong cache kind, mismatched dims and a position past the cache") {
  const MlaDims<double> dd = small_mla_dims();
  MlaDims<double> d = dd;
  d.T = 1;
  MlaTensors<double> w = random_mla_weights(dd, 3);
  std::vector<double> x(static_cast<std::size_t>(d.B) * d.C, 0.5), out(x.size());
  KvCacheDims cd;
  cd.B = d.B; cd.Tmax = 4; cd.L = d.L; cd.R = d.R; cd.H = 2; cd.D = 4;
  KvCache<double> mla(KvCacheKind::mla, cd), mha(KvCacheKind::mha, cd);
  CHECK_NOTHROW(mla_decode_absorbed(out.data(), x.data(), w.view(), d, mla, 0, 3));
  CHECK_THROWS_WITH_AS(mla_decode_naive(out.data(), x.data(), w.view(), d, mla, 0, 4),
                       doctest::Contains("position 4"), Error);
  CHECK_THROWS_WITH_AS(mla_decode_naive(out.data(), x.data(), w.view(), d, mha, 0, 0),
                       doctest::Contains("needs an mla kv-cache"), Error);
  CHECK_THROWS_AS(mla_decode_absorbed(out.data(), x.data(), w.view(), d, mla, 1, 0), Error);  // layer 1 of 1
  cd.L = d.L + 1;
  KvCache<double> wide(KvCacheKind::mla, cd);
  CHECK_THROWS_WITH_AS(mla_decode_absorbed(out.data(), x.data(), w.view(), d, wide, 0, 0),
                       doctest::Contains("do not fit"), Error);
  cd.L = d.L;
  cd.B = d.B - 1;  // fewer sequences than the block decodes (more is allowed: the first d.B are decoded)
  KvCache<double> short_cache(KvCacheKind::mla, cd);
  CHECK_THROWS_WITH_AS(mla_decode_absorbed(out.data(), x.data(), w.view(), d, short_cache, 0, 0),
                       doctest::Contains("do not fit"), Error);
  std::vector<double> wd(128, 0.1);  // (H*D, C) = (8, 16): the largest of the four
  const DenseAttnDims<double> dense{d.B, d.C, 2, 2, 4, 10000.0};
  const DenseAttnParams<double> dp{wd.data(), wd.data(), wd.data(), wd.data()};
  CHECK_THROWS_WITH_AS(dense_attention_decode(out.data(), x.data(), dp, dense, mla, 0, 0),
                       doctest::Contains("got an mla cache"), Error);
}
