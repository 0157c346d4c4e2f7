// kernels/moe_dispatch.cuh — host launchers of the MoE dispatch/combine kernels (kernels/moe_dispatch.cu), the GPU
// twins of tinyds/ops/moe_dispatch.h: same names, same argument order, float only, device pointers.
//
// Shapes: N tokens, C width, E routed experts, K experts per token, P = N*K (token, slot) pairs = sorted rows.
// Launchers launch and return. Values are not validated (see moe_router.cuh); dimensions are.
#pragma once

namespace tinyds::cuda {

// Stable counting sort of the pairs p = n*K + k by expert topk_idx[p]; the same outputs, in the same order, as the
// CPU op: expert_offsets (E+1), sorted_token (P), sorted_slot (P), pair_pos (N, K) written.   topk_idx (N, K)
void moe_dispatch_sort(int* expert_offsets, int* sorted_token, int* sorted_slot, int* pair_pos, const int* topk_idx,
                       int N, int K, int E);

// xe (P, C) written: xe[r] = x[sorted_token[r]].   x (N, C), sorted_token (P)
void moe_gather_forward(float* xe, const float* x, const int* sorted_token, int P, int C);

// dx (N, C) written: dx[n] = sum_k dxe[pair_pos[n, k]] in k order.   dxe (P, C), pair_pos (N, K)
void moe_gather_backward(float* dx, const float* dxe, const int* pair_pos, int N, int K, int C);

// out (N, C) written: out[n] = sum_k topk_w[n, k] * ye[pair_pos[n, k]].   ye (P, C), topk_w (N, K), pair_pos (N, K)
void moe_combine_forward(float* out, const float* ye, const float* topk_w, const int* pair_pos, int N, int K, int C);

// dye (P, C) written: dye[pair_pos[n, k]] = topk_w[n, k] * dout[n];  dtopk_w (N, K) written: dout[n] . ye[pair_pos]
//   dout (N, C), ye (P, C), topk_w (N, K), pair_pos (N, K)
void moe_combine_backward(float* dye, float* dtopk_w, const float* dout, const float* ye, const float* topk_w,
                          const int* pair_pos, int N, int K, int C);

}  // namespace tinyds::cuda
