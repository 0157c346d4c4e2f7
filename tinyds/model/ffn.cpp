// tinyds/model/ffn.cpp — the SwiGLU feed-forward (see ffn.h): forward and backward side by side; every backward
// line names the forward line it differentiates.
//
// Shapes: N rows, C width, F hidden.  Gradients: dx and the parameters ACCUMULATED (+=).
#include "tinyds/model/ffn.h"

#include "tinyds/device/ops.h"

namespace tinyds {

template <typename real>
void ffn_forward(real* out,                    // (N, C) written
                 const FfnActivations<real>& a,  // saved for backward: a1, a3, act (N, F)
                 const real* x,                // (N, C)
                 const FfnWeights<real>& w,    // w1, w3 (F, C); w2 (C, F)
                 int N, int C, int F) {
  dev::matmul_forward(a.a1, x, w.w1, N, C, F);
  dev::matmul_forward(a.a3, x, w.w3, N, C, F);
  dev::swiglu_forward(a.act, a.a1, a.a3, static_cast<long>(N) * F);
  dev::matmul_forward(out, a.act, w.w2, N, F, C);
}

template <typename real>
void ffn_backward(real* dx,                       // (N, C) accumulated
                  const FfnWeights<real>& dw,     // accumulated
                  const FfnScratch<real>& s,      // dact, da1, da3 (N, F); dx1 (N, C)
                  const real* dout,               // (N, C)
                  const FfnActivations<real>& a,  // from forward
                  const real* x,                  // (N, C) forward's input
                  const FfnWeights<real>& w,      // forward's weights
                  int N, int C, int F) {
  const long NC = static_cast<long>(N) * C;
  // forward: out = act @ w2^T
  dev::matmul_backward(s.dact, dw.w2, dout, a.act, w.w2, N, F, C);
  // forward: act = silu(a1) * a3
  dev::swiglu_backward(s.da1, s.da3, s.dact, a.a1, a.a3, static_cast<long>(N) * F);
  // forward: a1 = x @ w1^T;  a3 = x @ w3^T   (x feeds both: its gradients sum)
  dev::matmul_backward(s.dx1, dw.w1, s.da1, x, w.w1, N, C, F);
  dev::add_inplace(dx, s.dx1, NC);
  dev::matmul_backward(s.dx1, dw.w3, s.da3, x, w.w3, N, C, F);
  dev::add_inplace(dx, s.dx1, NC);
}

template void ffn_forward<float>(float*, const FfnActivations<float>&, const float*, const FfnWeights<float>&, int,
                                 int, int);
template void ffn_forward<double>(double*, const FfnActivations<double>&, const double*, const FfnWeights<double>&,
                                  int, int, int);
template void ffn_backward<float>(float*, const FfnWeights<float>&, const FfnScratch<float>&, const float*,
                                  const FfnActivations<float>&, const float*, const FfnWeights<float>&, int, int,
                                  int);
template void ffn_backward<double>(double*, const FfnWeights<double>&, const FfnScratch<double>&, const double*,
                                   const FfnActivations<double>&, const double*, const FfnWeights<double>&, int,
                                   int, int);

}  // namespace tinyds
