// tinyds/ops/moe_balance.h — MoE load balancing: the auxiliary-loss-free bias update, the MaxVio metric, and the
// two balance losses (DeepSeek-V3's sequence-wise loss and DeepSeekMoE's expert-level "aux" loss).
//
// Shapes: N tokens = B sequences * T tokens, E routed experts, K experts per token.
// Formulas (DESIGN 4.3):
//   load_i = number of (token, slot) pairs routed to expert i                  (sum_i load_i = N*K)
//   aux-loss-free (V3 §2.1.2; Loss-Free Balancing arXiv 2408.15664):  b_i += gamma * sign(mean(load) - load_i)
//   MaxVio = max_i load_i / mean(load) - 1                                     (Loss-Free Balancing paper)
//   sequence-wise loss (V3 Eq. 17-20), per sequence b of T tokens:
//     f_i = E / (K T) * sum_t 1[i chosen for t];  s'_ti = s_ti / sum_j s_tj;  P_i = (1/T) sum_t s'_ti
//     L_b = alpha * sum_i f_i P_i;   tinyds returns the MEAN over the B sequences: L = (1/B) sum_b L_b
//     (V3 writes the loss for one sequence; the mean keeps alpha's meaning independent of B).
//   expert-level loss (DeepSeekMoE arXiv 2401.06066 §4.1, the "aux" baseline): the same with the whole batch as
//     one sequence (f over all N tokens, P the mean of the normalised scores over all N). With softmax scores
//     s' = s (they already sum to 1), which is DeepSeekMoE's P_i.
//   Perfect balance (f_i = 1, P_i = 1/E) gives sum_i f_i P_i = 1, so L = alpha.
// The losses' gradients flow into the scores only (f is a count: constant); the caller passes dscores to
// moe_router_backward as dscores_extra. dscores is an activation gradient: WRITTEN (=).
// The bias is a buffer, not a parameter: it is updated after each optimizer step, never by AdamW.
// When: in the supervised trainers (`tinyds sft`, which also pre-trains from scratch, and `distill`'s student).
// The preference and RL trainers (DPO, the reward model, PPO's policy and critic, GRPO) keep the biases frozen:
// V3 itself sets gamma to 0 for its last 500B pre-training tokens (§4.2), the RL batches are the policy's own
// samples with prompts and padding (a shifting distribution the routing was never balanced for), and an update
// that does not scale with the learning rate would move the policy even at lr 0, so the KL to the reference and
// the learning rate would no longer measure how far the update went.
// Conventions: see embedding.h.
#pragma once

namespace tinyds {

// load (E) written: load[i] = #{(n, k) : topk_idx[n, k] == i}.   topk_idx (N, K) in [0, E) (else tinyds::Error)
void moe_expert_load(int* load, const int* topk_idx, int N, int K, int E);

// bias (E) += gamma * sign(mean(load) - load_i), sign(0) = 0: overloaded experts go down, underloaded go up.
//   load (E)
template <typename real>
void moe_update_bias(real* bias, const int* load, int E, real gamma);

// max_i load_i / mean(load) - 1 (0 for a perfectly uniform load; 0 when no token was routed).   load (E)
double moe_maxvio(const int* load, int E);

// Sequence-wise balance loss (V3 Eq. 17-20), returns L (mean over the B sequences, see above).
//   f (B, E) out, saved for backward: f[b, i] = E / (K T) * count of sequence b's tokens choosing i
//   scores (N, E) the router's unbiased scores s (N = B*T, sequence b = rows [b*T, (b+1)*T)), topk_idx (N, K)
template <typename real>
real moe_seqaux_forward(real* f, const real* scores, const int* topk_idx, int B, int T, int E, int K, real alpha);

// dscores (N, E) written = dloss * dL/dscores (f held constant).   f (B, E) from forward, scores (N, E)
template <typename real>
void moe_seqaux_backward(real* dscores, real dloss, const real* f, const real* scores, int B, int T, int E,
                         real alpha);

// Expert-level balance loss (DeepSeekMoE), over all N tokens at once: f (E) out, scores (N, E), topk_idx (N, K).
template <typename real>
real moe_aux_forward(real* f, const real* scores, const int* topk_idx, int N, int E, int K, real alpha);

// dscores (N, E) written.   f (E) from forward, scores (N, E)
template <typename real>
void moe_aux_backward(real* dscores, real dloss, const real* f, const real* scores, int N, int E, real alpha);

}  // namespace tinyds
