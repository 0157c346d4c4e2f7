// tinyds/device/ops.h — every op the model calls, run on this thread's current device (tinyds/device/device.h):
// the CPU reference of tinyds/ops/ (templated on float or double) or the CUDA kernel of kernels/ with the same name
// and arguments (float only, on device pointers). The model files call `dev::<op>(...)`; nothing else differs
// between the two paths. Reading map: tinyds/ops/<op>.cpp (CPU) <-> kernels/<op>.cu (CUDA).
//
// Ops whose CPU reference returns a statistic (moe_seqaux_forward, moe_aux_forward) return it here too: the
// kernel launcher reads its device result back. The optimizer's norm and clip are in tinyds/device/optimizer.h.
#pragma once

#include <type_traits>

#include "kernels/attention.cuh"
#include "kernels/copy_cols.cuh"
#include "kernels/cross_entropy.cuh"
#include "kernels/embedding.cuh"
#include "kernels/matmul.cuh"
#include "kernels/mla_decode.cuh"
#include "kernels/moe_balance.cuh"
#include "kernels/moe_dispatch.cuh"
#include "kernels/moe_router.cuh"
#include "kernels/residual.cuh"
#include "kernels/rmsnorm.cuh"
#include "kernels/rope.cuh"
#include "kernels/sampling.cuh"
#include "kernels/swiglu.cuh"
#include "tinyds/device/device.h"
#include "tinyds/model/mla_decode.h"
#include "tinyds/model/sampling.h"
#include "tinyds/ops/attention.h"
#include "tinyds/ops/copy_cols.h"
#include "tinyds/ops/cross_entropy.h"
#include "tinyds/ops/embedding.h"
#include "tinyds/ops/matmul.h"
#include "tinyds/ops/moe_balance.h"
#include "tinyds/ops/moe_dispatch.h"
#include "tinyds/ops/moe_router.h"
#include "tinyds/ops/residual.h"
#include "tinyds/ops/rmsnorm.h"
#include "tinyds/ops/rope.h"
#include "tinyds/ops/swiglu.h"

namespace tinyds::dev {

// true when this thread's ops run as CUDA kernels. The kernels are float: a double model never runs there
// (Transformer<double> refuses Device::cuda), so the double instantiations always take the CPU branch.
template <typename real>
inline bool on_cuda() {
  if constexpr (std::is_same_v<real, float>) return current_device() == Device::cuda;
  return false;
}

// Each function: `if on cuda: the kernel; else: the CPU reference`. In the float instantiation both branches
// compile; in the double one only the CPU branch does (if constexpr).
#define TINYDS_DEV_OP(name, params, args)                 \
  template <typename real>                                 \
  inline void name params {                                \
    if constexpr (std::is_same_v<real, float>) {           \
      if (on_cuda<real>()) return cuda::name args;         \
    }                                                      \
    tinyds::name args;                                     \
  }

// ops/embedding.h  <->  kernels/embedding.cu
TINYDS_DEV_OP(embedding_forward, (real* out, const int* tokens, const real* wte, int N, int C),
              (out, tokens, wte, N, C))
TINYDS_DEV_OP(embedding_backward, (real* dwte, const real* dout, const int* tokens, int N, int C),
              (dwte, dout, tokens, N, C))
// ops/rmsnorm.h  <->  kernels/rmsnorm.cu
TINYDS_DEV_OP(rmsnorm_forward,
              (real* out, real* rstd, const real* inp, const real* weight, int N, int C, real eps),
              (out, rstd, inp, weight, N, C, eps))
TINYDS_DEV_OP(rmsnorm_backward,
              (real* dinp, real* dweight, const real* dout, const real* inp, const real* weight, const real* rstd,
               int N, int C),
              (dinp, dweight, dout, inp, weight, rstd, N, C))
// ops/residual.h  <->  kernels/residual.cu
TINYDS_DEV_OP(residual_forward, (real* out, const real* a, const real* b, long n), (out, a, b, n))
TINYDS_DEV_OP(residual_backward, (real* da, real* db, const real* dout, long n), (da, db, dout, n))
TINYDS_DEV_OP(add_inplace, (real* acc, const real* x, long n), (acc, x, n))
TINYDS_DEV_OP(scale_inplace, (real* x, real s, long n), (x, s, n))
// ops/rope.h  <->  kernels/rope.cu
TINYDS_DEV_OP(rope_forward, (real* out, const real* inp, int B, int T, int H, int R, int pos0, real theta),
              (out, inp, B, T, H, R, pos0, theta))
TINYDS_DEV_OP(rope_backward, (real* dinp, const real* dout, int B, int T, int H, int R, int pos0, real theta),
              (dinp, dout, B, T, H, R, pos0, theta))
// ops/swiglu.h  <->  kernels/swiglu.cu
TINYDS_DEV_OP(swiglu_forward, (real* out, const real* a, const real* b, long n), (out, a, b, n))
TINYDS_DEV_OP(swiglu_backward, (real* da, real* db, const real* dout, const real* a, const real* b, long n),
              (da, db, dout, a, b, n))
// ops/attention.h  <->  kernels/attention.cu
TINYDS_DEV_OP(attention_forward,
              (real* out, real* att, const real* q, const real* k, const real* v, int B, int T, int H, int Hkv,
               int Dk, int Dv, real scale),
              (out, att, q, k, v, B, T, H, Hkv, Dk, Dv, scale))
TINYDS_DEV_OP(attention_backward,
              (real* dq, real* dk, real* dv, const real* dout, const real* q, const real* k, const real* v,
               const real* att, int B, int T, int H, int Hkv, int Dk, int Dv, real scale),
              (dq, dk, dv, dout, q, k, v, att, B, T, H, Hkv, Dk, Dv, scale))
// ops/copy_cols.h  <->  kernels/copy_cols.cu
TINYDS_DEV_OP(copy_cols,
              (real* dst, int dst_width, int dcol, const real* src, int src_width, int scol, int N, int w),
              (dst, dst_width, dcol, src, src_width, scol, N, w))
TINYDS_DEV_OP(sum_head_cols, (real* out, const real* in, int N, int H, int width, int col, int w),
              (out, in, N, H, width, col, w))
// ops/cross_entropy.h  <->  kernels/cross_entropy.cu
TINYDS_DEV_OP(cross_entropy_forward, (real* losses, real* lse, const real* logits, const int* targets, int N, int V),
              (losses, lse, logits, targets, N, V))
TINYDS_DEV_OP(cross_entropy_backward,
              (real* dlogits, const real* dlosses, const real* logits, const real* lse, const int* targets, int N,
               int V),
              (dlogits, dlosses, logits, lse, targets, N, V))
// ops/moe_router.h  <->  kernels/moe_router.cu
TINYDS_DEV_OP(moe_router_forward,
              (real* scores, int* topk_idx, real* topk_w, const real* logits, const real* bias, int N, int E, int K,
               ScoreFunc func, real route_scale, int n_group, int topk_group),
              (scores, topk_idx, topk_w, logits, bias, N, E, K, func, route_scale, n_group, topk_group))
TINYDS_DEV_OP(moe_router_backward,
              (real* dlogits, const real* dtopk_w, const real* dscores_extra, const real* scores,
               const int* topk_idx, int N, int E, int K, ScoreFunc func, real route_scale),
              (dlogits, dtopk_w, dscores_extra, scores, topk_idx, N, E, K, func, route_scale))
// ops/moe_dispatch.h  <->  kernels/moe_dispatch.cu
TINYDS_DEV_OP(moe_gather_forward, (real* xe, const real* x, const int* sorted_token, int P, int C),
              (xe, x, sorted_token, P, C))
TINYDS_DEV_OP(moe_gather_backward, (real* dx, const real* dxe, const int* pair_pos, int N, int K, int C),
              (dx, dxe, pair_pos, N, K, C))
TINYDS_DEV_OP(moe_combine_forward,
              (real* out, const real* ye, const real* topk_w, const int* pair_pos, int N, int K, int C),
              (out, ye, topk_w, pair_pos, N, K, C))
TINYDS_DEV_OP(moe_combine_backward,
              (real* dye, real* dtopk_w, const real* dout, const real* ye, const real* topk_w, const int* pair_pos,
               int N, int K, int C),
              (dye, dtopk_w, dout, ye, topk_w, pair_pos, N, K, C))
// ops/moe_balance.h  <->  kernels/moe_balance.cu
TINYDS_DEV_OP(moe_update_bias, (real* bias, const int* load, int E, real gamma), (bias, load, E, gamma))
TINYDS_DEV_OP(moe_seqaux_backward,
              (real* dscores, real dloss, const real* f, const real* scores, int B, int T, int E, real alpha),
              (dscores, dloss, f, scores, B, T, E, alpha))
TINYDS_DEV_OP(moe_aux_backward,
              (real* dscores, real dloss, const real* f, const real* scores, int N, int E, real alpha),
              (dscores, dloss, f, scores, N, E, alpha))

#undef TINYDS_DEV_OP

// The dispatch sort is on ints only; `real` (the model's type, given explicitly) says whether cuda is possible.
template <typename real>
inline void moe_dispatch_sort(int* expert_offsets, int* sorted_token, int* sorted_slot, int* pair_pos,
                              const int* topk_idx, int N, int K, int E) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>())
      return cuda::moe_dispatch_sort(expert_offsets, sorted_token, sorted_slot, pair_pos, topk_idx, N, K, E);
  }
  tinyds::moe_dispatch_sort(expert_offsets, sorted_token, sorted_slot, pair_pos, topk_idx, N, K, E);
}

// The kernels' matmul takes a bias (nullptr here: the model's projections have none).
template <typename real>
inline void matmul_forward(real* out, const real* inp, const real* weight, int N, int IC, int OC) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>()) return cuda::matmul_forward(out, inp, weight, nullptr, N, IC, OC);
  }
  tinyds::matmul_forward(out, inp, weight, N, IC, OC);
}
template <typename real>
inline void matmul_backward(real* dinp, real* dweight, const real* dout, const real* inp, const real* weight, int N,
                            int IC, int OC) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>()) return cuda::matmul_backward(dinp, dweight, nullptr, dout, inp, weight, N, IC, OC);
  }
  tinyds::matmul_backward(dinp, dweight, dout, inp, weight, N, IC, OC);
}

// The balance losses return their value on both paths (the launcher sums the per-sequence partials on the host in
// the CPU's order).
template <typename real>
inline real moe_seqaux_forward(real* f, const real* scores, const int* topk_idx, int B, int T, int E, int K, real alpha) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>()) return cuda::moe_seqaux_forward(f, scores, topk_idx, B, T, E, K, alpha);
  }
  return tinyds::moe_seqaux_forward(f, scores, topk_idx, B, T, E, K, alpha);
}
template <typename real>
inline real moe_aux_forward(real* f, const real* scores, const int* topk_idx, int N, int E, int K, real alpha) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>()) return cuda::moe_aux_forward(f, scores, topk_idx, N, E, K, alpha);
  }
  return tinyds::moe_aux_forward(f, scores, topk_idx, N, E, K, alpha);
}

// model/mla_decode.h (the absorbed path's attention over the latent cache)  <->  kernels/mla_decode.cu
template <typename real>
inline void mla_decode_attention_absorbed(real* o, const real* q, const real* ckv, const real* kr, const real* wkv_b,
                                          int B, int T, int H, int D, int R, int L, int Tmax, int pos) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>()) return cuda::mla_decode_attention_absorbed(o, q, ckv, kr, wkv_b, B, T, H, D, R, L, Tmax, pos);
  }
  tinyds::mla_decode_attention_absorbed(o, q, ckv, kr, wkv_b, B, T, H, D, R, L, Tmax, pos);
}

// model/sampling.h  <->  kernels/sampling.cu: the next token of each of N rows from the uniforms the host drew
// (float logits only; the Decoder is float). tokens (N), logits (N, V), uniforms (N) on the current device.
inline void sample_tokens(int* tokens, const float* logits, const double* uniforms, int N, int V, float temperature,
                          int top_k, float top_p) {
  if (on_cuda<float>()) return cuda::sample_tokens(tokens, logits, uniforms, N, V, temperature, top_k, top_p);
  tinyds::sample_tokens(tokens, logits, uniforms, N, V, temperature, top_k, top_p);
}

}  // namespace tinyds::dev
