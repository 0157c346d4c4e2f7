// tinyds/model/moe_layer.cpp — the MoE FFN layer: forward and hand-written backward side by side (see
// moe_layer.h for the formulas). Every backward line names the forward line it differentiates.
//
// Shapes: N tokens, C width, E routed experts, K slots per token, F expert hidden, S = Ns*F shared hidden,
// P = N*K sorted (token, slot) rows.  Gradients: du WRITTEN (=), parameters ACCUMULATED (+=).
#include "tinyds/model/moe_layer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tinyds/core/carver.h"
#include "tinyds/core/error.h"
#include "tinyds/device/memory.h"
#include "tinyds/device/ops.h"
#include "tinyds/ops/moe_balance.h"

namespace tinyds {

void check_moe_dims(const MoeDims& d, const char* where) {
  auto need = [&](bool ok, const char* field, long value, const char* rule) {
    if (!ok) throw_error(where, ": MoE ", field, " = ", value, " ", rule);
  };
  need(d.N >= 1, "N (tokens)", d.N, "must be >= 1");
  need(d.B >= 1, "B (sequences)", d.B, "must be >= 1");
  need(d.T >= 1, "T (sequence length)", d.T, "must be >= 1");
  need(static_cast<long>(d.B) * d.T == d.N, "N (tokens)", d.N, "must equal B * T (the balance losses need them)");
  need(d.C >= 1, "C (width)", d.C, "must be >= 1");
  need(d.E >= 1, "E (routed experts)", d.E, "must be >= 1");
  need(d.K >= 1 && d.K <= d.E, "K (active experts)", d.K, "must be in [1, E]");
  need(d.F >= 1, "F (expert hidden)", d.F, "must be >= 1");
  need(d.Ns >= 0, "Ns (shared experts)", d.Ns, "must be >= 0");
  if (!std::isfinite(d.route_scale)) throw_error(where, ": MoE route_scale = ", d.route_scale, " is not finite");
  if (d.seqaux && !(d.alpha_seq >= 0)) throw_error(where, ": MoE alpha_seq = ", d.alpha_seq, " must be >= 0");
  if (d.aux && !(d.alpha_aux >= 0)) throw_error(where, ": MoE alpha_aux = ", d.alpha_aux, " must be >= 0");
}

// ---------------------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------------------
namespace {

// Grows buf to hold `need` elements (never shrinks: a smaller batch reuses the allocation).
template <typename T>
void ensure_size(Buffer<T>& buf, std::size_t need, Role role, Place place) {
  if (need > buf.size()) buf.reset(need, role, Category::activations, place);
}

}  // namespace

template <typename real>
MoeActivations<real>& MoeBuffers<real>::activations(const MoeDims& d) {
  check_moe_dims(d, "MoeBuffers::activations");  // before any size is computed from the dims
  Carver<real> rcount{nullptr};
  Carver<int> icount{nullptr};
  carve_moe_activations<real>(rcount, icount, d);
  ensure_size(act_real_, rcount.used, role_, place_);
  ensure_size(act_int_, icount.used, role_, place_);
  Carver<real> rc{act_real_.data()};
  Carver<int> ic{act_int_.data()};
  acts_ = carve_moe_activations<real>(rc, ic, d);
  return acts_;
}

template <typename real>
MoeBackwardScratch<real>& MoeBuffers<real>::scratch(const MoeDims& d) {
  check_moe_dims(d, "MoeBuffers::scratch");
  Carver<real> count{nullptr};
  carve_moe_scratch<real>(count, d);
  ensure_size(bwd_real_, count.used, role_, place_);
  Carver<real> rc{bwd_real_.data()};
  scratch_ = carve_moe_scratch<real>(rc, d);
  return scratch_;
}

// ---------------------------------------------------------------------------------------------------------
// Experts: each is the SwiGLU feed-forward of model/ffn.h, viewed on its slice of the stacked weights
// ---------------------------------------------------------------------------------------------------------
namespace {

// Routed expert e's weights: w1, w3 (F, C) and w2 (C, F) at offset e*F*C of the stacked (E, ...) tensors.
template <typename real>
FfnWeights<real> expert_weights(const MoeWeights<real>& w, int e, const MoeDims& d) {
  const long FC = static_cast<long>(d.F) * d.C;
  return FfnWeights<real>{w.w1 + e * FC, w.w3 + e * FC, w.w2 + e * FC};
}

// The Ns shared experts as one FFN of hidden S = Ns*F.
template <typename real>
FfnWeights<real> shared_weights(const MoeWeights<real>& w) {
  return FfnWeights<real>{w.shared_w1, w.shared_w3, w.shared_w2};
}

// Rows [r0, ...) of the routed experts' saved tensors and scratch (hidden width F, model width C).
template <typename real>
FfnActivations<real> rows_of(const FfnActivations<real>& a, long r0, int F) {
  return FfnActivations<real>{a.a1 + r0 * F, a.a3 + r0 * F, a.act + r0 * F};
}
template <typename real>
FfnScratch<real> rows_of(const FfnScratch<real>& s, long r0, int F, int C) {
  return FfnScratch<real>{s.dact + r0 * F, s.da1 + r0 * F, s.da3 + r0 * F, s.dx1 + r0 * C};
}

// Routed experts: ye = ffn_e(xe) on each expert's contiguous rows, one GEMM per projection (empty experts skipped).
// The expert offsets (E+1 ints, in the model's place) copied to the host: the per-expert loops below run there.
template <typename real>
std::vector<int> offsets_on_host(const MoeActivations<real>& a, const MoeDims& d) {
  std::vector<int> off(d.E + 1);
  dev::to_host(off.data(), a.offsets, off.size());
  return off;
}

template <typename real>
void routed_experts_forward(const MoeActivations<real>& a, const MoeWeights<real>& w, const MoeDims& d) {
  const int C = d.C, F = d.F;
  const std::vector<int> off = offsets_on_host(a, d);
  for (int e = 0; e < d.E; e++) {
    const long r0 = off[e];
    const int n = off[e + 1] - off[e];
    if (n == 0) continue;
    ffn_forward(a.ye + r0 * C, rows_of(a.experts, r0, F), a.xe + r0 * C, expert_weights(w, e, d), n, C, F);
  }
}

// On entry s.dye holds d(ye); on exit s.dxe holds d(xe). Expert weight gradients accumulate.
template <typename real>
void routed_experts_backward(const MoeBackwardScratch<real>& s, const MoeWeights<real>& dw,
                             const MoeActivations<real>& a, const MoeWeights<real>& w, const MoeDims& d) {
  const int C = d.C, F = d.F;
  const long P = static_cast<long>(d.N) * d.K;
  dev::zero(s.dxe, P * C);  // ffn_backward accumulates; the experts' rows tile [0, P)
  const std::vector<int> off = offsets_on_host(a, d);
  // forward: ye = ffn_e(xe)   (on expert e's rows)
  for (int e = 0; e < d.E; e++) {
    const long r0 = off[e];
    const int n = off[e + 1] - off[e];
    if (n == 0) continue;  // an unused expert's weights get no gradient (its rows do not exist)
    ffn_backward(s.dxe + r0 * C, expert_weights(dw, e, d), rows_of(s.experts, r0, F, C), s.dye + r0 * C,
                 rows_of(a.experts, r0, F), a.xe + r0 * C, expert_weights(w, e, d), n, C, F);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Balance losses (DESIGN 4.3): functions of the scores, with the choice (f) held constant
// ---------------------------------------------------------------------------------------------------------
template <typename real>
real balance_forward(const MoeActivations<real>& a, const MoeDims& d) {
  real loss = real(0);
  if (d.seqaux)
    loss += dev::moe_seqaux_forward(a.f_seq, a.scores, a.topk_idx, d.B, d.T, d.E, d.K, static_cast<real>(d.alpha_seq));
  if (d.aux) loss += dev::moe_aux_forward(a.f_aux, a.scores, a.topk_idx, d.N, d.E, d.K, static_cast<real>(d.alpha_aux));
  return loss;
}

// Returns d(dbalance * balance)/d(scores) (N, E) in s.dscores, or nullptr when no balance loss is on.
template <typename real>
const real* balance_backward(const MoeBackwardScratch<real>& s, real dbalance, const MoeActivations<real>& a,
                             const MoeDims& d) {
  if (!d.seqaux && !d.aux) return nullptr;
  if (d.seqaux)
    dev::moe_seqaux_backward(s.dscores, dbalance, a.f_seq, a.scores, d.B, d.T, d.E, static_cast<real>(d.alpha_seq));
  if (d.aux) {
    // Both losses read the same scores: their gradients sum.
    real* target = d.seqaux ? s.dscores_tmp : s.dscores;
    dev::moe_aux_backward(target, dbalance, a.f_aux, a.scores, d.N, d.E, static_cast<real>(d.alpha_aux));
    if (d.seqaux) dev::add_inplace(s.dscores, s.dscores_tmp, static_cast<long>(d.N) * d.E);
  }
  return s.dscores;
}

void check_weights_present(const void* sw1, const void* sw3, const void* sw2, const MoeDims& d, const char* where) {
  if (d.Ns > 0 && (!sw1 || !sw3 || !sw2))
    throw_error(where, ": Ns = ", d.Ns, " shared experts but a shared weight pointer (shared_w1/w3/w2) is null");
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// The layer
// ---------------------------------------------------------------------------------------------------------
template <typename real>
real moe_layer_forward(real* out,                  // (N, C) written
                       MoeActivations<real>& a,    // saved for backward
                       const real* u,              // (N, C)
                       const MoeWeights<real>& w,  // see MoeWeights
                       const real* bias,           // (E) or nullptr
                       const MoeDims& d) {
  check_moe_dims(d, "moe_layer_forward");
  check_weights_present(w.shared_w1, w.shared_w3, w.shared_w2, d, "moe_layer_forward");
  const int N = d.N, C = d.C, E = d.E, K = d.K, P = N * K;
  // Router: scores from the logits; the bias only reorders the choice, topk_w uses the unbiased scores (V3 Eq. 13-16).
  dev::matmul_forward(a.logits, u, w.router, N, C, E);
  dev::moe_router_forward(a.scores, a.topk_idx, a.topk_w, a.logits, bias, N, E, K, d.score, static_cast<real>(d.route_scale),
                     d.n_group, d.topk_group);
  // Dispatch: sort the P pairs by expert so each expert's tokens are one contiguous block of rows.
  dev::moe_dispatch_sort<real>(a.offsets, a.sorted_token, a.sorted_slot, a.pair_pos, a.topk_idx, N, K, E);
  dev::moe_gather_forward(a.xe, u, a.sorted_token, P, C);
  routed_experts_forward(a, w, d);
  // Combine: out[n] = sum_k topk_w[n, k] * ye[pair_pos[n, k]]
  dev::moe_combine_forward(out, a.ye, a.topk_w, a.pair_pos, N, K, C);
  if (d.Ns > 0) {
    // shared(u): one SwiGLU FFN of hidden S = Ns*F on every token
    ffn_forward(a.shared_out, a.shared, u, shared_weights(w), N, C, d.Ns * d.F);
    dev::add_inplace(out, a.shared_out, static_cast<long>(N) * C);  // out = routed + shared
  }
  return balance_forward(a, d);
}

template <typename real>
void moe_layer_backward(real* du,                           // (N, C) written
                        const MoeWeights<real>& dw,         // accumulated
                        const real* dout,                   // (N, C)
                        real dbalance,                      // d(objective) / d(returned balance loss)
                        const MoeActivations<real>& a,      // from forward
                        const real* u,                      // (N, C) forward's input
                        const MoeWeights<real>& w,          // forward's weights
                        const MoeDims& d,
                        const MoeBackwardScratch<real>& s) {
  check_moe_dims(d, "moe_layer_backward");
  check_weights_present(w.shared_w1, w.shared_w3, w.shared_w2, d, "moe_layer_backward");
  check_weights_present(dw.shared_w1, dw.shared_w3, dw.shared_w2, d, "moe_layer_backward (gradients)");
  const int N = d.N, C = d.C, E = d.E, K = d.K;
  const long NC = static_cast<long>(N) * C;
  // forward: out = sum_k topk_w[n, k] * ye[pair_pos[n, k]] (+ shared)  -> d(ye) and d(topk_w)
  dev::moe_combine_backward(s.dye, s.dtopk_w, dout, a.ye, a.topk_w, a.pair_pos, N, K, C);
  // forward: ye = FFN_e(xe) on each expert's rows
  routed_experts_backward(s, dw, a, w, d);
  // forward: xe = u[sorted_token]   (each token's K rows sum back into it; du is written here)
  dev::moe_gather_backward(du, s.dxe, a.pair_pos, N, K, C);
  // forward: scores, topk_w = router(logits); balance = losses(scores). The choice carries no gradient.
  const real* dscores_extra = balance_backward(s, dbalance, a, d);
  dev::moe_router_backward(s.dlogits, s.dtopk_w, dscores_extra, a.scores, a.topk_idx, N, E, K, d.score,
                      static_cast<real>(d.route_scale));
  // forward: logits = u @ router^T
  dev::matmul_backward(s.dtmp, dw.router, s.dlogits, u, w.router, N, C, E);
  dev::add_inplace(du, s.dtmp, NC);
  // forward: out += shared(u)   (the shared output enters out with weight 1: its upstream gradient is dout)
  if (d.Ns > 0) ffn_backward(du, shared_weights(dw), s.shared, dout, a.shared, u, shared_weights(w), N, C, d.Ns * d.F);
}

// ---------------------------------------------------------------------------------------------------------
// After the optimizer step
// ---------------------------------------------------------------------------------------------------------
template <typename real>
void moe_layer_load(int* load, const MoeActivations<real>& a, const MoeDims& d) {
  // The dispatch's offsets are the per-expert counts (a counting sort): no second pass over topk_idx.
  const std::vector<int> off = offsets_on_host(a, d);
  for (int e = 0; e < d.E; e++) load[e] = off[e + 1] - off[e];
}

template <typename real>
double moe_layer_maxvio(const MoeActivations<real>& a, const MoeDims& d) {
  std::vector<int> load(d.E);
  moe_layer_load(load.data(), a, d);
  return moe_maxvio(load.data(), d.E);
}

template <typename real>
void moe_layer_update_bias(real* bias, const MoeActivations<real>& a, const MoeDims& d, real gamma) {
  std::vector<int> load(d.E);
  moe_layer_load(load.data(), a, d);
  moe_update_bias(bias, load.data(), d.E, gamma);
}

template class MoeBuffers<float>;
template float moe_layer_forward<float>(float*, MoeActivations<float>&, const float*, const MoeWeights<float>&,
                                  const float*, const MoeDims&);
template void moe_layer_backward<float>(float*, const MoeWeights<float>&, const float*, float,
                                     const MoeActivations<float>&, const float*, const MoeWeights<float>&,
                                     const MoeDims&, const MoeBackwardScratch<float>&);
template void moe_layer_load<float>(int*, const MoeActivations<float>&, const MoeDims&);
template double moe_layer_maxvio<float>(const MoeActivations<float>&, const MoeDims&);
template void moe_layer_update_bias<float>(float*, const MoeActivations<float>&, const MoeDims&, float);
template class MoeBuffers<double>;
template double moe_layer_forward<double>(double*, MoeActivations<double>&, const double*, const MoeWeights<double>&,
                                  const double*, const MoeDims&);
template void moe_layer_backward<double>(double*, const MoeWeights<double>&, const double*, double,
                                     const MoeActivations<double>&, const double*, const MoeWeights<double>&,
                                     const MoeDims&, const MoeBackwardScratch<double>&);
template void moe_layer_load<double>(int*, const MoeActivations<double>&, const MoeDims&);
template double moe_layer_maxvio<double>(const MoeActivations<double>&, const MoeDims&);
template void moe_layer_update_bias<double>(double*, const MoeActivations<double>&, const MoeDims&, double);

}  // namespace tinyds
