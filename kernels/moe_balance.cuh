// kernels/moe_balance.cuh — host launchers of the MoE load-balancing kernels (kernels/moe_balance.cu), the GPU
// twins of tinyds/ops/moe_balance.h: same names, same argument order, float only, device pointers.
//
// Shapes: N tokens = B sequences * T tokens, E routed experts, K experts per token.
// moe_expert_load and moe_update_bias launch and return. moe_maxvio and the two loss forwards return a host
// value, as the CPU ops do, so they copy it back and therefore wait for the GPU (a logged metric and a loss are
// read on the host every step anyway). Values are not validated (see moe_router.cuh); dimensions are.
#pragma once

namespace tinyds::cuda {

// load (E) written: load[i] = #{(n, k) : topk_idx[n, k] == i}.   topk_idx (N, K)
void moe_expert_load(int* load, const int* topk_idx, int N, int K, int E);

// bias (E) += gamma * sign(mean(load) - load_i), sign(0) = 0.   load (E)
void moe_update_bias(float* bias, const int* load, int E, float gamma);

// max_i load_i / mean(load) - 1 (0 when nothing was routed).   load (E)
double moe_maxvio(const int* load, int E);

// Sequence-wise balance loss (V3 Eq. 17-20), the mean over B sequences; f (B, E) out, scores (N, E), topk_idx (N, K)
float moe_seqaux_forward(float* f, const float* scores, const int* topk_idx, int B, int T, int E, int K, float alpha);
// dscores (N, E) written.   f (B, E), scores (N, E)
void moe_seqaux_backward(float* dscores, float dloss, const float* f, const float* scores, int B, int T, int E,
                         float alpha);

// Expert-level balance loss (DeepSeekMoE): the sequence-wise loss with one sequence of all N tokens.
float moe_aux_forward(float* f, const float* scores, const int* topk_idx, int N, int E, int K, float alpha);
void moe_aux_backward(float* dscores, float dloss, const float* f, const float* scores, int N, int E, float alpha);

}  // namespace tinyds::cuda
