// tinyds/model/mla_decode.cpp — naive and absorbed MLA decoding over a latent kv-cache (see mla_decode.h).
//
// Shapes: B sequences, T new tokens each (at positions pos..pos+T-1; T = 1 in plain decoding), C width, H heads,
// D content/value head dim, R rope dim, L latent rank, Q query latent rank, Tmax cache length; new token t sees
// n = pos + t + 1 cached rows.
#include "tinyds/model/mla_decode.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <Eigen/Dense>

#include "tinyds/core/error.h"
#include "tinyds/model/decode_common.h"
#include "tinyds/device/memory.h"
#include "tinyds/device/ops.h"

namespace tinyds {

namespace {

template <typename real>
void check_cache(const KvCache<real>& cache, const MlaDims<real>& d, int pos, const char* where) {
  mla_check_dims(d, where);
  const KvCacheDims& c = cache.dims();
  if (cache.kind() != KvCacheKind::mla)
    throw_error(where, ": needs an mla kv-cache, got a ", kv_cache_kind_name(cache.kind()), " cache");
  if (c.B < d.B || c.L != d.L || c.R != d.R)
    throw_error(where, ": cache dims (B ", c.B, ", L ", c.L, ", R ", c.R, ") do not fit the block's (B ", d.B,
                ", L ", d.L, ", R ", d.R, ")");
  cache.check_position(pos, where);
  cache.check_position(pos + d.T - 1, where);  // the last of the T new tokens must fit too
}

// The projections of the T new tokens of each sequence (the lines of mla_forward for rows at pos..pos+T-1):
// q (B, T, H, D+R) with its rope part rotated; c_KV and k_R written into rows pos..pos+T-1 of the cache.
// Every op runs on the current device (tinyds/device/ops.h); the scratch lives there too.
template <typename real>
void project_tokens(real* q,        // (B, T, H, D+R) written
                    const real* x,  // (B, T, C)
                    const MlaParams<real>& p, const MlaDims<real>& d, KvCache<real>& cache, int layer, int pos) {
  const int B = d.B, T = d.T, N = B * T, C = d.C, H = d.H, D = d.D, R = d.R, L = d.L, Q = d.Q;
  const int Tmax = cache.dims().Tmax;
  DecodeScratch<real> cq_pre(N * Q), cq(N * Q), rstd(N), qr(N * H * R), ckv_pre(N * L), ckv(N * L), kr(N * R);
  // c_Q = RMSNorm(x wq_a^T);  q = c_Q wq_b^T;  q_R = RoPE(q_R) at positions pos + t   (N = B*T rows, one GEMM)
  dev::matmul_forward(cq_pre.data(), x, p.wq_a, N, C, Q);
  dev::rmsnorm_forward(cq.data(), rstd.data(), cq_pre.data(), p.q_norm, N, Q, d.eps);
  dev::matmul_forward(q, cq.data(), p.wq_b, N, Q, H * (D + R));
  mla_gather_rope_part(qr.data(), q, N, H, D, R);  // on the current device (model/mla.h)
  dev::rope_forward(qr.data(), qr.data(), B, T, H, R, pos, d.theta);  // row (b, t) at position pos + t
  mla_scatter_rope_part(q, qr.data(), N, H, D, R);
  // c_KV = RMSNorm(x wkv_a[0:L]^T);  k_R = RoPE(x wkv_a[L:]^T)
  dev::matmul_forward(ckv_pre.data(), x, p.wkv_a, N, C, L);
  dev::rmsnorm_forward(ckv.data(), rstd.data(), ckv_pre.data(), p.kv_norm, N, L, d.eps);
  dev::matmul_forward(kr.data(), x, p.wkv_a + static_cast<long>(L) * C, N, C, R);
  dev::rope_forward(kr.data(), kr.data(), B, T, 1, R, pos, d.theta);
  // The cache keeps exactly these two per token: (L + R) values. All T rows are written before any attends,
  // and row t reads only rows <= pos + t: the causal mask within the new tokens. Each sequence's T rows are
  // contiguous on both sides: one copy per sequence and tensor.
  for (int b = 0; b < B; b++) {
    const long src = static_cast<long>(b) * T, row = static_cast<long>(b) * Tmax + pos;
    dev::copy(cache.ckv(layer) + row * L, ckv.data() + src * L, static_cast<std::size_t>(T) * L);
    dev::copy(cache.kr(layer) + row * R, kr.data() + src * R, static_cast<std::size_t>(T) * R);
  }
}

}  // namespace

template <typename real>
void mla_decode_naive(real* out,        // (B, T, C)
                      const real* x,    // (B, T, C)
                      const MlaParams<real>& p, const MlaDims<real>& d, KvCache<real>& cache, int layer, int pos) {
  check_cache(cache, d, pos, "mla_decode_naive");
  const int B = d.B, T = d.T, C = d.C, H = d.H, D = d.D, R = d.R, L = d.L, Tmax = cache.dims().Tmax;
  const int n_all = pos + T;  // cached rows the last new token sees
  const real scale = real(1) / std::sqrt(real(D + R));
  if (dev::on_cuda<real>())
    throw_error("mla_decode_naive: the naive path runs on the CPU only (its per-head loops have no kernel); "
                "decode with MlaPath::absorbed on cuda");
  std::vector<real> q(static_cast<std::size_t>(B) * T * H * (D + R)), kv(static_cast<std::size_t>(n_all) * H * 2 * D);
  std::vector<real> s(n_all), s_rope(n_all), o(static_cast<std::size_t>(B) * T * H * D);
  project_tokens(q.data(), x, p, d, cache, layer, pos);
  for (int b = 0; b < B; b++) {
    const real* ckv = cache.ckv(layer) + static_cast<long>(b) * Tmax * L;  // (n_all, L) rows of this sequence
    const real* kr = cache.kr(layer) + static_cast<long>(b) * Tmax * R;    // (n_all, R)
    // Materialise [k_C; v] (n_all, H, 2D) = c_KV wkv_b^T for every cached row: the cost the absorbed path avoids.
    matmul_forward(kv.data(), ckv, p.wkv_b, n_all, L, H * 2 * D);
    for (int t = 0; t < T; t++) {
      const int n = pos + t + 1;  // new token t sees rows 0..pos+t (causal)
      const long row = static_cast<long>(b) * T + t;
      for (int h = 0; h < H; h++) {
        const real* qh = q.data() + (row * H + h) * (D + R);  // [q_C (D); q_R (R)]
        // s[j] = q_C . k_C[j, h] + q_R . k_R[j]   (k_C[j, h]: the first half of row j's head h in [k_C; v])
        decode::dots(s.data(), qh, kv.data() + static_cast<long>(h) * 2 * D, static_cast<long>(H) * 2 * D, n, D);
        decode::dots(s_rope.data(), qh + D, kr, R, n, R);
        for (int j = 0; j < n; j++) s[j] += s_rope[j];
        decode::softmax_scaled(s.data(), n, scale);
        // o[h] = sum_j p_j v[j, h]: v is the second half of each head's [k_C; v]
        decode::weighted_sum(o.data() + (row * H + h) * D, s.data(), kv.data() + h * 2 * D + D,
                             static_cast<long>(H) * 2 * D, n, D);
      }
    }
  }
  matmul_forward(out, o.data(), p.wo, B * T, H * D, C);
}

template <typename real>
void mla_decode_attention_absorbed(real* o,            // (B, T, H, D)
                                   const real* q,      // (B, T, H, D+R)
                                   const real* ckv,    // (B, Tmax, L)
                                   const real* kr,     // (B, Tmax, R)
                                   const real* wkv_b,  // (H*2D, L)
                                   int B, int T, int H, int D, int R, int L, int Tmax, int pos) {
  // Row-major Eigen maps over the caller's arrays; a head's slice of a (rows, H, w) array is a (rows, w) matrix
  // whose rows are H*w apart (OuterStride). The two weight products are one GEMM per head over all B*T rows; each
  // new token's attention is decode_common.h's matrix-vector products. Eigen keeps the partial sums in SIMD
  // registers where plain loops were chains of scalar adds (`tinyds bench --rollout`, small, 1 thread: 980 -> 561
  // ms with the prefill of rollout.cpp; notebooks/EXPERIMENTS.md, "Sampling speed").
  using Mat = Eigen::Matrix<real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Strided = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
  using StridedOut = Eigen::Map<Mat, 0, Eigen::OuterStride<>>;
  const long N = static_cast<long>(B) * T;
  const real scale = real(1) / std::sqrt(real(D + R));
  std::vector<real> q_lat(static_cast<std::size_t>(N) * H * L), o_lat(q_lat.size());  // (N, H, L) each
  std::vector<real> s(pos + T), s_rope(pos + T);                                      // (n) one head's scores
  // q_lat[h] = q_C[h] W_UK[h]   (N, D) x (D, L): the queries moved into latent space, so keys are never rebuilt
  for (int h = 0; h < H; h++) {
    const Strided q_c(q + static_cast<long>(h) * (D + R), N, D, Eigen::OuterStride<>(H * (D + R)));
    const Eigen::Map<const Mat> w_uk(wkv_b + static_cast<long>(h) * 2 * D * L, D, L);
    StridedOut(q_lat.data() + static_cast<long>(h) * L, N, L, Eigen::OuterStride<>(H * L)).noalias() = q_c * w_uk;
  }
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < T; t++) {
      const int n = pos + t + 1;  // new token t sees rows 0..pos+t (causal)
      const long row = static_cast<long>(b) * T + t;
      const real* c_kv = ckv + static_cast<long>(b) * Tmax * L;  // (n, L) this sequence's cached rows
      const real* k_r = kr + static_cast<long>(b) * Tmax * R;    // (n, R)
      const real* ql = q_lat.data() + row * H * L;               // (H, L)
      const real* qr = q + row * H * (D + R) + D;                // (H, R), rows D + R apart
      for (int h = 0; h < H; h++) {
        // s[j] = q_lat[h] . c_KV[j] + q_R[h] . k_R[j]   (n): every cached row against head h's query
        decode::dots(s.data(), ql + static_cast<long>(h) * L, c_kv, L, n, L);
        decode::dots(s_rope.data(), qr + static_cast<long>(h) * (D + R), k_r, R, n, R);
        for (int j = 0; j < n; j++) s[j] += s_rope[j];
        decode::softmax_scaled(s.data(), n, scale);
        // o_lat[h] = sum_j p_j c_KV[j]   (L): values are never rebuilt either
        decode::weighted_sum(o_lat.data() + (row * H + h) * L, s.data(), c_kv, L, n, L);
      }
    }
  }
  // o[h] = o_lat[h] W_UV[h]^T   (N, L) x (L, D): W_UV folded into the output
  for (int h = 0; h < H; h++) {
    const Strided ol(o_lat.data() + static_cast<long>(h) * L, N, L, Eigen::OuterStride<>(H * L));
    const Eigen::Map<const Mat> w_uv(wkv_b + static_cast<long>(h) * 2 * D * L + static_cast<long>(D) * L, D, L);
    StridedOut(o + static_cast<long>(h) * D, N, D, Eigen::OuterStride<>(H * D)).noalias() = ol * w_uv.transpose();
  }
}

template <typename real>
void mla_decode_absorbed(real* out,      // (B, T, C)
                         const real* x,  // (B, T, C)
                         const MlaParams<real>& p, const MlaDims<real>& d, KvCache<real>& cache, int layer, int pos) {
  check_cache(cache, d, pos, "mla_decode_absorbed");
  const int B = d.B, T = d.T, C = d.C, H = d.H, D = d.D, R = d.R, L = d.L, Tmax = cache.dims().Tmax;
  DecodeScratch<real> q(static_cast<std::size_t>(B) * T * H * (D + R)), o(static_cast<std::size_t>(B) * T * H * D);
  project_tokens(q.data(), x, p, d, cache, layer, pos);
  // The attention over the latent cache: a CUDA kernel on the device (kernels/mla_decode.cu), the loop above on the CPU.
  dev::mla_decode_attention_absorbed(o.data(), q.data(), cache.ckv(layer), cache.kr(layer), p.wkv_b, B, T, H, D, R,
                                     L, Tmax, pos);
  dev::matmul_forward(out, o.data(), p.wo, B * T, H * D, C);
}

template void mla_decode_naive<float>(float*, const float*, const MlaParams<float>&, const MlaDims<float>&,
                                      KvCache<float>&, int, int);
template void mla_decode_naive<double>(double*, const double*, const MlaParams<double>&, const MlaDims<double>&,
                                       KvCache<double>&, int, int);
template void mla_decode_attention_absorbed<float>(float*, const float*, const float*, const float*, const float*,
                                                   int, int, int, int, int, int, int, int);
template void mla_decode_attention_absorbed<double>(double*, const double*, const double*, const double*,
                                                    const double*, int, int, int, int, int, int, int, int);
template void mla_decode_absorbed<float>(float*, const float*, const MlaParams<float>&, const MlaDims<float>&,
                                         KvCache<float>&, int, int);
template void mla_decode_absorbed<double>(double*, const double*, const MlaParams<double>&,
                                          const MlaDims<double>&, KvCache<double>&, int, int);

}  // namespace tinyds
