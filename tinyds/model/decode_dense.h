// tinyds/model/decode_dense.h — incremental decoding of the dense attention block (MHA / GQA / MQA) with a
// per-kv-head key/value cache: the decode twin of the attention half of Transformer::layer_forward.
//
// Shapes: B sequences, T new tokens each (T = 1 in plain decoding) at positions p..p+T-1; C width, H query heads,
// Hkv kv heads (H % Hkv == 0; MHA Hkv = H, MQA Hkv = 1), D head dim, Tmax cache length.
//
//   q = RoPE_p(x wq^T) (B, H, D);  k = RoPE_p(x wk^T), v = x wv^T (B, Hkv, D) -> cache.k/v[b, p]
//   o[b, h] = sum_{j <= p} softmax_j(q[b,h] . K[b,j,g] / sqrt(D)) V[b,j,g],   g = h / (H / Hkv)
//   out = concat_h o[b, h] wo^T (B, C)
// With T > 1 (a speculative-decoding verification) all T keys/values are cached first and new token t attends
// over rows j <= p + t: the causal mask within the new tokens.
#pragma once
#include "tinyds/model/kv_cache.h"

namespace tinyds {

// Raw pointers to one dense attention layer's weights (LayerParams' wq, wk, wv, wo).
template <typename real>
struct DenseAttnParams {
  const real* wq;  // (H*D, C)
  const real* wk;  // (Hkv*D, C)
  const real* wv;  // (Hkv*D, C)
  const real* wo;  // (C, H*D)
};

template <typename real>
struct DenseAttnDims {
  int B;       // sequences decoded together
  int C;       // model width
  int H;       // query heads
  int Hkv;     // key/value heads
  int D;       // head dim (RoPE rotates all D, as in the training block)
  real theta;  // RoPE base
  int T = 1;   // new tokens per sequence, at positions pos..pos+T-1 (1 in plain decoding)
};

// One decode step of one dense attention layer. out (B, T, C); x (B, T, C) the normed inputs of the T = d.T new
// tokens of each sequence at pos..pos+T-1. The cache must be a dense cache (mha/gqa/mqa) with the same Hkv, D and at
// least B sequences, holding this layer's rows 0..pos-1 of its first B; rows pos..pos+T-1 of those are written here.
template <typename real>
void dense_attention_decode(real* out, const real* x, const DenseAttnParams<real>& p, const DenseAttnDims<real>& d,
                            KvCache<real>& cache, int layer, int pos);

}  // namespace tinyds
