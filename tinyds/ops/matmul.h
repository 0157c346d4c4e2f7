// tinyds/ops/matmul.h — the linear layer, as a GEMM on row-major Eigen maps.
// Shapes: N rows, IC input width, OC output width. Conventions: see embedding.h.
#pragma once

namespace tinyds {

// out (N, OC) = inp (N, IC) @ weight^T;   weight (OC, IC) (PyTorch nn.Linear layout, bias=False as in DeepSeek-V3)
template <typename real>
void matmul_forward(real* out, const real* inp, const real* weight, int N, int IC, int OC);

// dinp (N, IC) = dout @ weight (written; skipped when dinp is nullptr)
// dweight (OC, IC) += dout^T @ inp
template <typename real>
void matmul_backward(real* dinp, real* dweight, const real* dout, const real* inp, const real* weight, int N, int IC,
                     int OC);

}  // namespace tinyds
