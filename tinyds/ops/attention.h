// tinyds/ops/attention.h — causal scaled dot-product attention with grouped key/value heads.
//
// Shapes: B batch, T time, H query heads, Hkv key/value heads (H % Hkv == 0; MHA: Hkv = H, MQA: Hkv = 1),
// Dk query/key dim, Dv value dim. Query head h reads key/value head h / (H / Hkv).
// Dk and Dv are separate so MLA (keys of width D + R, values of width D) reuses this op.
// Conventions: see embedding.h.
#pragma once

namespace tinyds {

// att (B, H, T, T): att[b,h,t,j] = softmax_j<=t( scale * q[b,t,h,:] . k[b,j,h/(H/Hkv),:] ), 0 for j > t
// out (B, T, H, Dv) = sum_j att[b,h,t,j] * v[b,j,h/(H/Hkv),:]
//   q (B, T, H, Dk), k (B, T, Hkv, Dk), v (B, T, Hkv, Dv)
template <typename real>
void attention_forward(real* out, real* att, const real* q, const real* k, const real* v,
                       int B, int T, int H, int Hkv, int Dk, int Dv, real scale);

// dq (B, T, H, Dk), dk (B, T, Hkv, Dk), dv (B, T, Hkv, Dv): all written (grouped heads sum into their kv head).
template <typename real>
void attention_backward(real* dq, real* dk, real* dv, const real* dout, const real* q, const real* k,
                        const real* v, const real* att, int B, int T, int H, int Hkv, int Dk, int Dv, real scale);

}  // namespace tinyds
