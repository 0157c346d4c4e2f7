// kernels/moe_router.cuh — host launchers of the MoE router kernels (kernels/moe_router.cu), the GPU twins of
// tinyds/ops/moe_router.h: same names, same argument order, float only, every pointer a device pointer.
//
// Shapes: N tokens, E routed experts, K experts per token.
// The launchers launch and return (no synchronisation). Unlike the CPU op they do not validate the values
// (a non-finite logit, an expert index outside [0, E)): reading them back to check would cost a sync; the
// dimensions are checked on the host and a bad one throws std::invalid_argument naming it.
#pragma once
#include "tinyds/ops/moe_router.h"  // ScoreFunc

namespace tinyds::cuda {

// scores (N, E), topk_idx (N, K), topk_w (N, K) written; logits (N, E), bias (E) or nullptr.
// Same choice as the CPU op: biased score s + b descending, ties to the lower expert index; group-limited when
// n_group > 1 (n_group <= 64 here: the eligible groups are one 64-bit mask).
// version 1: one thread per token; 2: one warp per token (E <= 1024, n_group <= 32); 0: version 2 where it applies,
// else 1 (see moe_router.cu).
void moe_router_forward(float* scores, int* topk_idx, float* topk_w, const float* logits, const float* bias, int N,
                        int E, int K, ScoreFunc func, float route_scale, int n_group, int topk_group,
                        int version = 0);

// dlogits (N, E) written; dtopk_w (N, K), dscores_extra (N, E) or nullptr, scores (N, E), topk_idx (N, K).
void moe_router_backward(float* dlogits, const float* dtopk_w, const float* dscores_extra, const float* scores,
                         const int* topk_idx, int N, int E, int K, ScoreFunc func, float route_scale,
                         int version = 0);

}  // namespace tinyds::cuda
