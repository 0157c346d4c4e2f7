// kernels/attention.cuh — host launchers of the causal attention kernels (kernels/attention.cu); device pointers.
// Mirrors tinyds/ops/attention.h. Shapes: B batch, T time, H query heads, Hkv kv heads (H % Hkv == 0), Dk query/key
// dim, Dv value dim; query head h reads kv head h / (H / Hkv).
#pragma once

namespace tinyds::cuda {

// att (B, H, T, T) causal softmax of scale q.k (0 for j > t);  out (B, T, H, Dv) = att v.
//   q (B, T, H, Dk), k (B, T, Hkv, Dk), v (B, T, Hkv, Dv)
// version 1: three kernels (scores, softmax, weighted sum) through att in global memory.
// version 2: one fused flash-style kernel (tiles of keys in shared memory, online softmax); att is still written
//            because the op returns it for the backward. version 0 = 2.
void attention_forward(float* out, float* att, const float* q, const float* k, const float* v, int B, int T, int H,
                       int Hkv, int Dk, int Dv, float scale, int version = 0);

// dq (B, T, H, Dk), dk (B, T, Hkv, Dk), dv (B, T, Hkv, Dv) written, from dout (B, T, H, Dv) and the saved att.
// version 1 (= 0): one block per query row; dq written directly, dk and dv accumulated with atomicAdd.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* att, int B, int T, int H, int Hkv, int Dk, int Dv, float scale,
                        int version = 0);

}  // namespace tinyds::cuda
