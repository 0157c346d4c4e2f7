// kernels/mla_decode.cuh — host launcher of MLA's absorbed decode attention (kernels/mla_decode.cu): the attention
// part of tinyds/model/mla_decode.h's mla_decode_absorbed, over the latent kv-cache, on device pointers.
//
// Shapes: B sequences, T new tokens each at positions pos..pos+T-1, H heads, D content/value head dim, R rope dim,
// L kv latent rank, Tmax cache length. New token t sees the cached rows 0..pos+t.
// The projections around it (c_Q, q, c_KV, k_R, and out = o @ wo^T) are the ordinary matmul/rmsnorm/rope ops.
// The launcher launches and returns.
#pragma once

namespace tinyds::cuda {

// o (B, T, H, D) written:
//   q_lat[h] = W_UK[h]^T q_C[h] (L);  s_j = q_lat[h].c_KV[j] + q_R[h].k_R[j];  p = softmax(s / sqrt(D+R))
//   o_lat[h] = sum_j p_j c_KV[j] (L);  o[h] = W_UV[h] o_lat[h] (D)
// q (B, T, H, D+R) per head [q_C (D); q_R (R)] with q_R rotated; ckv (B, Tmax, L) and kr (B, Tmax, R) one layer's
// cache, rows 0..pos+T-1 filled; wkv_b (H*2D, L): per head D rows of W_UK then D rows of W_UV.
// version 1: scores one thread per cached row; 2: one warp per cached row (coalesced); 0 = 2 (see mla_decode.cu).
void mla_decode_attention_absorbed(float* o, const float* q, const float* ckv, const float* kr, const float* wkv_b,
                                   int B, int T, int H, int D, int R, int L, int Tmax, int pos, int version = 0);

}  // namespace tinyds::cuda
