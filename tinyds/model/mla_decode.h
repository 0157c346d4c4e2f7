// tinyds/model/mla_decode.h — incremental MLA decoding with a latent kv-cache: the naive and the absorbed path
// (DeepSeek-V3 inference/model.py calls them "naive" and "absorb"; DESIGN section 4.1), kept side by side.
//
// Shapes: B sequences, T new tokens each (T = d.T, 1 in plain decoding) at positions p..p+T-1; C width, H heads,
// D content/value head dim, R rope dim, L kv latent rank, Q query latent rank; Tmax cache length.
//
// Both paths first project the new tokens exactly like mla_forward does for their rows (mla.h):
//   c_Q = RMSNorm(x wq_a^T);  [q_C; q_R] = c_Q wq_b^T;  q_R = RoPE_p(q_R)
//   c_KV = RMSNorm(x wkv_a[0:L]^T) -> cache.ckv[b, p];   k_R = RoPE_p(x wkv_a[L:]^T) -> cache.kr[b, p]
// and differ in how they attend over the cached rows j = 0..p (scale = 1/sqrt(D+R)); with T > 1, new token t
// attends over rows 0..p+t (all T rows are cached first; the causal mask is how far each one reads):
//   naive:    k_C[j,h], v[j,h] = W_UK[h] c_KV[j], W_UV[h] c_KV[j]      (materialised for every cached row)
//             s_j = q_C[h].k_C[j,h] + q_R[h].k_R[j];  o[h] = sum_j softmax(scale s)_j v[j,h]
//   absorbed: q_lat[h] = W_UK[h]^T q_C[h]   (L)        W_UK folded into the query, once per token
//             s_j = q_lat[h].c_KV[j] + q_R[h].k_R[j];  o_lat[h] = sum_j softmax(scale s)_j c_KV[j]   (L)
//             o[h] = W_UV[h] o_lat[h]                 W_UV folded into the output, once per token
// Both: out = concat_h o[h] wo^T. The two are equal because q_C.(W_UK c) = (W_UK^T q_C).c and the weighted sum
// commutes with W_UV; the absorbed path reads only c_KV and k_R (L + R values per cached row) and does
// O(L (D + p)) work per head instead of O(p L D).
// W_UK[h] is rows [h*2D, h*2D+D) of wkv_b and W_UV[h] rows [h*2D+D, h*2D+2D), each (D, L).
#pragma once
#include "tinyds/model/kv_cache.h"
#include "tinyds/model/mla.h"

namespace tinyds {

// One decode step of one MLA layer. out (B, T, C); x (B, T, C) the normed inputs of the T = d.T new tokens of
// each sequence, at positions pos..pos+T-1 (T = 1: one token per sequence; T > 1: a speculative-decoding
// verification, model/speculative.h). Uses d.B, T, C, H, D, R, L, Q, eps, theta (d.pos0 is ignored: the new
// tokens start at pos). The cache must be an MLA cache with the same L, R and at least B sequences, holding this
// layer's rows 0..pos-1 of its first B sequences (the ones decoded; Decoder::prefill_shared decodes fewer than the
// cache holds); rows pos..pos+T-1 of those are written here.
template <typename real>
void mla_decode_naive(real* out, const real* x, const MlaParams<real>& p, const MlaDims<real>& d,
                      KvCache<real>& cache, int layer, int pos);

// The attention of the absorbed path alone, on the projected queries and the filled cache (what the CUDA kernel
// kernels/mla_decode.cu computes, with the same arguments; tinyds/device/ops.h dispatches between them):
//   q_lat[h] = W_UK[h]^T q_C[h];  s_j = q_lat[h].c_KV[j] + q_R[h].k_R[j];  p = softmax(s / sqrt(D+R))
//   o[h] = W_UV[h] sum_j p_j c_KV[j]
// o (B, T, H, D) written; q (B, T, H, D+R) per head [q_C; q_R] with q_R rotated; ckv (B, Tmax, L) and kr (B, Tmax, R)
// one layer's cache with rows 0..pos+T-1 filled; wkv_b (H*2D, L).
template <typename real>
void mla_decode_attention_absorbed(real* o, const real* q, const real* ckv, const real* kr, const real* wkv_b, int B,
                                   int T, int H, int D, int R, int L, int Tmax, int pos);

template <typename real>
void mla_decode_absorbed(real* out, const real* x, const MlaParams<real>& p, const MlaDims<real>& d,
                         KvCache<real>& cache, int layer, int pos);

}  // namespace tinyds
