// tinyds/model/moe_layer.h — the fine-grained MoE FFN layer (DeepSeekMoE arXiv 2401.06066; DeepSeek-V3 arXiv
// 2412.19437 §2.1.2; DESIGN 4.2, 4.3): Ns shared experts that every token uses, plus K of E routed experts per
// token chosen by a router, with its hand-written backward.
//
// Shapes: N tokens (= B sequences * T tokens), C width, E routed experts, K experts per token, F expert hidden
// width, Ns shared experts, S = Ns*F the shared hidden width, P = N*K (token, slot) pairs = sorted rows.
//
//   logits = u @ router^T                                               (N, E)  the router (V3's Gate)
//   scores, topk_idx, topk_w = moe_router_forward(logits, bias)                 bias (E) chooses, never weighs
//   sort the P pairs by expert; xe = u[sorted_token]                    (P, C)  expert e owns rows [off[e], off[e+1])
//   on expert e's rows:  ye = ffn_e(xe) = (silu(xe @ w1_e^T) * (xe @ w3_e^T)) @ w2_e^T   (P, C)  model/ffn.h
//   out[n] = sum_k topk_w[n, k] * ye[pair_pos[n, k]]  +  shared(u)[n]   (N, C)  V3 Eq. 12
//   shared(u) = (silu(u @ shared_w1^T) * (u @ shared_w3^T)) @ shared_w2^T      the Ns shared experts as ONE SwiGLU
//     FFN of hidden Ns*F (as V3 does): Ns FFNs of hidden F, summed, are one FFN with their weights stacked.
//   balance = alpha_seq * seqaux (V3 Eq. 17-20) + alpha_aux * aux (DeepSeekMoE)   returned by forward when enabled
// The residual add h' = h + out is the caller's (u is RMSNorm(h) there). No capacity limit: every (token, slot)
// pair is processed, no token is dropped (V3).
//
// Gradients: du WRITTEN (=); every parameter gradient ACCUMULATED (+=). The bias gets none (it is a buffer moved
// after each optimizer step by moe_layer_update_bias, DESIGN 4.3) and neither does the top-K choice (DESIGN 4.2):
// the router gradient flows through topk_w (the normalised unbiased scores of the chosen experts) and, when a
// balance loss is on, through its score gradient.
// Determinism: the experts run one after another, each GEMM with matmul's own fixed row-block threading, and the
// other ops are per-token parallel, so a fixed thread count gives the same bits on every run.
#pragma once
#include <cstddef>

#include "tinyds/core/ledger.h"
#include "tinyds/model/ffn.h"
#include "tinyds/ops/moe_router.h"

namespace tinyds {

// Dimensions and routing options of one MoE layer (doubles are converted to `real` where used).
struct MoeDims {
  int N;            // tokens, B*T, e.g. 16*128
  int B, T;         // sequences and their length (N == B*T; the sequence-wise loss works per sequence)
  int C;            // model width, e.g. 256
  int E;            // routed experts, e.g. 16
  int K;            // active routed experts per token, e.g. 2
  int F;            // hidden width of one expert, e.g. 128
  int Ns;           // shared experts, e.g. 1 (0: none)
  ScoreFunc score;  // sigmoid (V3) or softmax (DeepSeekMoE, V2)
  double route_scale;         // g_k *= route_scale (V3: 2.5 for the 671B model, 1 for the small configs)
  int n_group, topk_group;    // group-limited routing (n_group <= 1: off)
  bool seqaux;                // sequence-wise balance loss (V3 Eq. 17-20) on?
  double alpha_seq;           // its weight, e.g. 1e-4 (V3)
  bool aux;                   // expert-level balance loss over the batch (DeepSeekMoE), the "aux" baseline
  double alpha_aux;           // its weight
};

// Throws tinyds::Error naming the field (and `where`) if a dimension is out of range. The group options are
// checked by moe_router_forward.
void check_moe_dims(const MoeDims& d, const char* where);

// The layer's parameters (PyTorch nn.Linear layout, DeepSeek-V3 names). Used for the weights and, with the same
// layout, for their gradients. The shared pointers may be nullptr when Ns == 0.
template <typename real>
struct MoeWeights {
  real* router;     // (E, C)     router centroids e_i (V3 Gate.weight; checkpoint name ffn.gate)
  real* w1;         // (E, F, C)  experts[e].w1, expert e at offset e*F*C
  real* w3;         // (E, F, C)  experts[e].w3
  real* w2;         // (E, C, F)  experts[e].w2, expert e at offset e*C*F
  real* shared_w1;  // (S, C)     shared_experts.w1, S = Ns*F
  real* shared_w3;  // (S, C)     shared_experts.w3
  real* shared_w2;  // (C, S)     shared_experts.w2
};

// What forward keeps for backward (and for the after-step load statistics), named by the line that makes it.
// Routed-expert rows are in sorted (expert-major) order.
template <typename real>
struct MoeActivations {
  real* logits;       // (N, E)  u @ router^T
  real* scores;       // (N, E)  sigmoid(logits) or softmax over E: the UNBIASED scores s
  int* topk_idx;      // (N, K)  the chosen experts, by s + bias descending
  real* topk_w;       // (N, K)  route_scale * s[chosen] / sum_k s[chosen]
  int* offsets;       // (E+1)   expert e owns sorted rows [offsets[e], offsets[e+1]); offsets[E] = P
  int* sorted_token;  // (P)     sorted row r holds token sorted_token[r] ...
  int* sorted_slot;   // (P)     ... routed through its slot sorted_slot[r]
  int* pair_pos;      // (N, K)  pair (n, k) sits at sorted row pair_pos[n*K + k]
  real* xe;           // (P, C)  u[sorted_token]
  FfnActivations<real> experts;  // a1, a3, act (P, F) of xe, expert e's FFN on its rows (model/ffn.h)
  real* ye;           // (P, C)  ffn_e(xe)                      expert outputs before weighting
  FfnActivations<real> shared;   // a1, a3, act (N, S) of u, the shared experts' FFN
  real* shared_out;   // (N, C)  shared(u)                      scratch: backward does not read it
  real* f_seq;        // (B, E)  V3 Eq. 18 f_i of each sequence  (seqaux)
  real* f_aux;        // (E)     f_i over the whole batch          (aux)
};

// Scratch of the backward pass (nothing here outlives one backward call).
template <typename real>
struct MoeBackwardScratch {
  real* dlogits;       // (N, E)
  real* dscores;       // (N, E)  balance-loss gradient w.r.t. the scores (the router's dscores_extra)
  real* dscores_tmp;   // (N, E)  the aux loss's part when both losses are on
  real* dtopk_w;       // (N, K)
  real* dye;           // (P, C)
  FfnScratch<real> experts;  // dact, da1, da3 (P, F); dx1 (P, C): the routed experts' FFN backward
  real* dxe;           // (P, C)
  FfnScratch<real> shared;   // dact, da1, da3 (N, S); dx1 is dtmp: the shared experts' FFN backward
  real* dtmp;          // (N, C)  one branch's part of du before it is added
};

// Carver style (core/carver.h): `rc.take(n)` hands out n reals and `ic.take(n)` n ints from bump
// allocators, returning nullptr while they only count; the same code then gives both the sizes and the views.
// Two carvers because the routing indices are ints.
template <typename real, class RealCarver, class IntCarver>
MoeActivations<real> carve_moe_activations(RealCarver& rc, IntCarver& ic, const MoeDims& d) {
  const std::size_t N = d.N, C = d.C, E = d.E, K = d.K, F = d.F, B = d.B;
  const std::size_t S = static_cast<std::size_t>(d.Ns) * d.F, P = N * K;
  MoeActivations<real> a;
  a.logits = rc.take(N * E); a.scores = rc.take(N * E);
  a.topk_idx = ic.take(N * K); a.topk_w = rc.take(N * K);
  a.offsets = ic.take(E + 1); a.sorted_token = ic.take(P); a.sorted_slot = ic.take(P); a.pair_pos = ic.take(P);
  a.xe = rc.take(P * C);
  a.experts.a1 = rc.take(P * F); a.experts.a3 = rc.take(P * F); a.experts.act = rc.take(P * F);
  a.ye = rc.take(P * C);
  a.shared.a1 = rc.take(N * S); a.shared.a3 = rc.take(N * S); a.shared.act = rc.take(N * S);
  a.shared_out = rc.take(N * C);
  a.f_seq = rc.take(B * E); a.f_aux = rc.take(E);
  return a;
}

template <typename real, class RealCarver>
MoeBackwardScratch<real> carve_moe_scratch(RealCarver& rc, const MoeDims& d) {
  const std::size_t N = d.N, C = d.C, E = d.E, K = d.K, F = d.F;
  const std::size_t S = static_cast<std::size_t>(d.Ns) * d.F, P = N * K;
  MoeBackwardScratch<real> s;
  s.dlogits = rc.take(N * E); s.dscores = rc.take(N * E); s.dscores_tmp = rc.take(N * E);
  s.dtopk_w = rc.take(N * K);
  s.dye = rc.take(P * C);
  s.experts.dact = rc.take(P * F); s.experts.da1 = rc.take(P * F); s.experts.da3 = rc.take(P * F);
  s.dxe = rc.take(P * C); s.experts.dx1 = rc.take(P * C);
  s.shared.dact = rc.take(N * S); s.shared.da1 = rc.take(N * S); s.shared.da3 = rc.take(N * S);
  s.dtmp = rc.take(N * C);
  s.shared.dx1 = s.dtmp;  // used only inside the shared experts' backward
  return s;
}

// Owns one layer's activations and backward scratch (ledgered as Category::activations of `role`, in `place`:
// device memory for the kv-cache Decoder of a cuda model), carved for the dims of each call and grown when they
// need more. For tests and for callers that keep each MoE layer's memory apart; a model can instead carve the same
// views out of its own buffers with the functions above.
template <typename real>
class MoeBuffers {
 public:
  explicit MoeBuffers(Role role = Role::policy, Place place = Place::host) : role_(role), place_(place) {}
  MoeActivations<real>& activations(const MoeDims& d);
  MoeBackwardScratch<real>& scratch(const MoeDims& d);

 private:
  Role role_;
  Place place_;
  Buffer<real> act_real_, bwd_real_;
  Buffer<int> act_int_;
  MoeActivations<real> acts_{};
  MoeBackwardScratch<real> scratch_{};
};

// out (N, C) written = routed experts + shared experts (no residual). u (N, C) must stay unchanged until
// backward (backward reads it again). bias (E) or nullptr: used only to choose the experts. Returns the balance
// loss (alpha_seq * seqaux + alpha_aux * aux; 0 when both are off), which the caller adds to its objective.
template <typename real>
real moe_layer_forward(real* out, MoeActivations<real>& acts, const real* u, const MoeWeights<real>& w,
                       const real* bias, const MoeDims& d);

// du (N, C) written; dw: every tensor accumulated (the shared ones skipped when Ns == 0). dout (N, C) is the
// gradient w.r.t. out, dbalance the gradient w.r.t. the returned balance loss (e.g. 1, or 1/grad_accum_steps).
// acts, u, w: as in the preceding forward.
template <typename real>
void moe_layer_backward(real* du, const MoeWeights<real>& dw, const real* dout, real dbalance,
                        const MoeActivations<real>& acts, const real* u, const MoeWeights<real>& w, const MoeDims& d,
                        const MoeBackwardScratch<real>& scratch);

// ---- After the optimizer step (DESIGN 4.3) ----
// load (E, host) written: (token, slot) pairs routed to each expert by the last forward (sums to N*K), from the
// dispatch's offsets (copied to the host from the current device: call it under the model's OnDevice). To balance over
// several micro-batches, sum their loads and call moe_update_bias / moe_maxvio (moe_balance.h) on the sum.
template <typename real>
void moe_layer_load(int* load, const MoeActivations<real>& acts, const MoeDims& d);
// MaxVio = max_i load_i / mean(load) - 1 of the last forward.
template <typename real>
double moe_layer_maxvio(const MoeActivations<real>& acts, const MoeDims& d);
// bias (E) += gamma * sign(mean(load) - load_i) with the last forward's load (aux-loss-free balancing). bias is a
// host array (the CPU op); a model on cuda updates its device biases with Transformer::update_moe_bias.
template <typename real>
void moe_layer_update_bias(real* bias, const MoeActivations<real>& acts, const MoeDims& d, real gamma);

}  // namespace tinyds
