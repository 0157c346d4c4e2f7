// tinyds/ops/moe_router.h — the MoE router (gate): expert scores and top-K expert selection.
//
// Shapes: N tokens (B*T), E routed experts, K experts per token.
// Formulas (DESIGN 4.2; DeepSeek-V3 arXiv 2412.19437 §2.1.2 Eq. 13-16; DeepSeekMoE arXiv 2401.06066):
//   logits = u @ e^T                        (N, E)   computed by the caller with matmul_forward (centroids e (E, C))
//   s      = sigmoid(logits)                (N, E)   V3 default; softmax over E as the option (DeepSeekMoE, V2)
//   chosen = TopK_e(s + b, K)                        bias b (E) is used ONLY to choose (aux-loss-free balancing)
//   g_k    = route_scale * s[chosen_k] / sum_{j in chosen} s[j]        V3 Eq. 13, unbiased scores only
// Group-limited routing (V3 inference code, n_group / topk_group): the E experts form n_group contiguous groups of
// E / n_group; a group's score is the sum of its two largest biased scores; only the topk_group best groups are
// eligible, and the K experts are chosen among them.
// Gradients reach the logits only through g (and through an optional extra score gradient, e.g. from the
// sequence-wise balance loss); the choice and the bias carry none. dlogits is an activation gradient: WRITTEN (=).
// Conventions: see embedding.h.
#pragma once
#include <string>

namespace tinyds {

// How logits become expert scores s.
enum class ScoreFunc {
  sigmoid,  // s_e = sigmoid(logit_e), independent per expert (DeepSeek-V3)
  softmax   // s_e = softmax over the E experts (DeepSeekMoE, DeepSeek-V2)
};
const char* score_func_name(ScoreFunc f);               // "sigmoid" | "softmax"
ScoreFunc parse_score_func(const std::string& s);       // throws tinyds::Error naming the value

// scores (N, E)   = sigmoid(logits) or softmax(logits) over E        saved for backward
// topk_idx (N, K) = the K chosen experts of each token, by biased score s + b descending, ties to the lower index
// topk_w (N, K)   = route_scale * s[topk_idx] / sum_k s[topk_idx]   (normalised UNBIASED scores of the chosen)
// logits (N, E), bias (E) or nullptr (= zero bias). n_group <= 1: no group limit (topk_group is then ignored);
// n_group > 1: E % n_group == 0, 1 <= topk_group <= n_group, K <= topk_group * E / n_group.
// Softmax scoring is normalised over the chosen K the same way (the DESIGN 4.2 formula). Note DeepSeek-V3's
// inference code skips that renormalisation for softmax (its g is then the raw softmax score times route_scale,
// as in DeepSeekMoE), so with softmax tinyds's g sums to route_scale where theirs sums to less.
// Throws tinyds::Error on bad dimensions or a non-finite logit or bias (naming the position).
template <typename real>
void moe_router_forward(real* scores, int* topk_idx, real* topk_w, const real* logits, const real* bias, int N, int E,
                        int K, ScoreFunc func, real route_scale, int n_group, int topk_group);

// dlogits (N, E) written. dtopk_w (N, K) is the gradient of the loss w.r.t. topk_w; dscores_extra (N, E) or nullptr
// is a gradient w.r.t. scores from elsewhere (moe_seqaux_backward / moe_aux_backward), added before the
// sigmoid/softmax derivative. scores (N, E) and topk_idx (N, K) are forward's outputs.
template <typename real>
void moe_router_backward(real* dlogits, const real* dtopk_w, const real* dscores_extra, const real* scores,
                         const int* topk_idx, int N, int E, int K, ScoreFunc func, real route_scale);

}  // namespace tinyds
