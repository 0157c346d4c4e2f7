// tinyds/model/ffn.h — the SwiGLU feed-forward (Shazeer 2020; DeepSeek-V3's MLP and Expert), forward and
// hand-written backward. One implementation for the dense FFN of a block, each routed expert of a MoE layer (on
// that expert's rows) and the MoE layer's shared experts (moe_layer.h).
//
// Shapes: N rows (tokens, or one expert's sorted rows), C model width, F hidden width.
//
//   a1  = x @ w1^T            (N, F)   gate projection
//   a3  = x @ w3^T            (N, F)   up projection
//   act = silu(a1) * a3       (N, F)   the SwiGLU product (ops/swiglu.h)
//   out = act @ w2^T          (N, C)   down projection
//
// Weights in PyTorch nn.Linear layout: w1, w3 (F, C), w2 (C, F).
// Gradients: every parameter gradient ACCUMULATED (+=), and so is dx, unlike the ops' written dinp: the input
// feeds two projections here, and in a MoE layer also the router and the other experts, so each part is added
// onto what the caller holds (a caller that wants dx alone zeroes it first; 0 + a is exactly a).
#pragma once

namespace tinyds {

// The three projections; used for the weights and, with the same layout, for their gradients.
template <typename real>
struct FfnWeights {
  real* w1;  // (F, C)
  real* w3;  // (F, C)
  real* w2;  // (C, F)
};

// What forward keeps for backward, named by the line that makes it.
template <typename real>
struct FfnActivations {
  real* a1;   // (N, F)  x @ w1^T
  real* a3;   // (N, F)  x @ w3^T
  real* act;  // (N, F)  silu(a1) * a3
};

// Backward scratch (nothing here outlives one backward call).
template <typename real>
struct FfnScratch {
  real* dact;  // (N, F)
  real* da1;   // (N, F)
  real* da3;   // (N, F)
  real* dx1;   // (N, C)  one projection's part of dx before it is added
};

// out (N, C) written = w2(silu(w1 x) * w3 x). x (N, C) must stay unchanged until backward (it reads x again).
template <typename real>
void ffn_forward(real* out, const FfnActivations<real>& a, const real* x, const FfnWeights<real>& w, int N, int C,
                 int F);

// dx (N, C) ACCUMULATED += d(out)/d(x)^T dout; dw: w1, w3, w2 accumulated. dout (N, C). a, x, w: as in forward.
template <typename real>
void ffn_backward(real* dx, const FfnWeights<real>& dw, const FfnScratch<real>& s, const real* dout,
                  const FfnActivations<real>& a, const real* x, const FfnWeights<real>& w, int N, int C, int F);

}  // namespace tinyds
