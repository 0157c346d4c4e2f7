// tinyds/ops/moe_dispatch.h — MoE dispatch (tokens to experts) and combine (expert outputs back to tokens).
//
// Shapes: N tokens, C width, E routed experts, K experts per token, P = N*K (token, slot) pairs = rows of the
// expert-sorted buffers.
// The P pairs (n, k) — token n's k-th chosen expert topk_idx[n, k] — are sorted by expert with a stable counting
// sort, so expert e owns the contiguous rows [expert_offsets[e], expert_offsets[e+1]) of the sorted buffers, and
// one GEMM per expert runs on its slice (DESIGN 4.2). No capacity limit: no token is ever dropped (DeepSeek-V3).
// A layer uses them as:
//   moe_dispatch_sort(offsets, sorted_token, sorted_slot, pair_pos, topk_idx, N, K, E)
//   moe_gather_forward(xe, x, sorted_token, P, C)                   xe (P, C)
//   for each expert e: rows [offsets[e], offsets[e+1]) of xe -> SwiGLU FFN_e -> same rows of ye (P, C)
//   moe_combine_forward(out, ye, topk_w, pair_pos, N, K, C)         out[n] = sum_k topk_w[n,k] * ye[pair_pos[n,k]]
// and backward in reverse: moe_combine_backward -> experts' backward -> moe_gather_backward.
// Gradients here are all activation gradients: WRITTEN (=). Combine and the gather backward run in parallel over
// tokens, each token summing its K rows in k order, so the result has the same bits for any thread count.
// Conventions: see embedding.h.
#pragma once

namespace tinyds {

// Stable counting sort of the pairs p = n*K + k by expert topk_idx[p] (within an expert, pairs stay in (n, k)
// order). All outputs written:
//   expert_offsets (E+1)  expert e's rows are [expert_offsets[e], expert_offsets[e+1]); expert_offsets[E] = N*K
//   sorted_token (N*K)    row r holds token sorted_token[r] ...
//   sorted_slot (N*K)     ... routed through its slot sorted_slot[r] (the k of topk_idx[n, k])
//   pair_pos (N, K)       the inverse: pair (n, k) sits at row pair_pos[n*K + k]
// topk_idx (N, K) in [0, E) (throws tinyds::Error naming (n, k) otherwise).
void moe_dispatch_sort(int* expert_offsets, int* sorted_token, int* sorted_slot, int* pair_pos, const int* topk_idx,
                       int N, int K, int E);

// xe[r, :] = x[sorted_token[r], :]        xe (P, C), x (N, C), sorted_token (P)
template <typename real>
void moe_gather_forward(real* xe, const real* x, const int* sorted_token, int P, int C);

// dx (N, C) WRITTEN: dx[n, :] = sum_k dxe[pair_pos[n, k], :]  (summed in k order; every token has its K rows, so
// every row of dx is written; the layer adds the shared experts' and the residual's gradients itself).
//   dxe (P, C), pair_pos (N, K)
template <typename real>
void moe_gather_backward(real* dx, const real* dxe, const int* pair_pos, int N, int K, int C);

// out (N, C) written: out[n, :] = sum_k topk_w[n, k] * ye[pair_pos[n, k], :]
//   ye (P, C) expert outputs in sorted order, topk_w (N, K), pair_pos (N, K)
template <typename real>
void moe_combine_forward(real* out, const real* ye, const real* topk_w, const int* pair_pos, int N, int K, int C);

// dye (P, C) written: dye[pair_pos[n, k], :] = topk_w[n, k] * dout[n, :]
// dtopk_w (N, K) written: dtopk_w[n, k] = dout[n, :] . ye[pair_pos[n, k], :]
//   dout (N, C), ye (P, C), topk_w (N, K), pair_pos (N, K)
template <typename real>
void moe_combine_backward(real* dye, real* dtopk_w, const real* dout, const real* ye, const real* topk_w,
                          const int* pair_pos, int N, int K, int C);

}  // namespace tinyds
