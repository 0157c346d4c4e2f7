// tinyds/ops/matmul.cpp — the linear layer as a GEMM on row-major Eigen maps (see matmul.h).
//
// Shapes: N rows (B*T), IC input width, OC output width.
//   out (N, OC) = inp (N, IC) @ weight^T + bias,   weight (OC, IC) as in PyTorch's nn.Linear.
// Gradients: dinp WRITTEN (=), dweight and dbias ACCUMULATED (+=).
// Eigen::Map views the caller's memory without copying; noalias() tells Eigen the destination does not overlap
// the operands, so it writes the product straight into it (no temporary). When built with -fopenmp Eigen splits
// each large GEMM over the OpenMP threads itself; inside an outer parallel region it runs single-threaded.
#include "tinyds/ops/matmul.h"

#include <Eigen/Dense>

namespace tinyds {

template <typename real>
using MatR = Eigen::Matrix<real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename real>
using RowVec = Eigen::Matrix<real, 1, Eigen::Dynamic>;

template <typename real>
void matmul_forward(real* out,           // (N, OC)
                    const real* inp,     // (N, IC)
                    const real* weight,  // (OC, IC)
                    const real* bias,    // (OC) or nullptr
                    int N, int IC, int OC) {
  Eigen::Map<const MatR<real>> X(inp, N, IC);
  Eigen::Map<const MatR<real>> W(weight, OC, IC);
  Eigen::Map<MatR<real>> Y(out, N, OC);
  Y.noalias() = X * W.transpose();
  if (bias) Y.rowwise() += Eigen::Map<const RowVec<real>>(bias, OC);
}

// forward was: out = inp @ weight^T + bias
//   dinp    = dout @ weight            (N, OC) x (OC, IC)
//   dweight += dout^T @ inp            (OC, N) x (N, IC)
//   dbias   += sum over rows of dout
template <typename real>
void matmul_backward(real* dinp,          // (N, IC) written, or nullptr (e.g. the first layer's input)
                     real* dweight,       // (OC, IC) accumulated
                     real* dbias,         // (OC) accumulated, or nullptr
                     const real* dout,    // (N, OC)
                     const real* inp,     // (N, IC)
                     const real* weight,  // (OC, IC)
                     int N, int IC, int OC) {
  Eigen::Map<const MatR<real>> dY(dout, N, OC);
  Eigen::Map<const MatR<real>> X(inp, N, IC);
  Eigen::Map<const MatR<real>> W(weight, OC, IC);
  if (dinp) {
    Eigen::Map<MatR<real>> dX(dinp, N, IC);
    dX.noalias() = dY * W;
  }
  Eigen::Map<MatR<real>> dW(dweight, OC, IC);
  dW.noalias() += dY.transpose() * X;
  if (dbias) Eigen::Map<RowVec<real>>(dbias, OC) += dY.colwise().sum();
}

template void matmul_forward<float>(float*, const float*, const float*, const float*, int, int, int);
template void matmul_forward<double>(double*, const double*, const double*, const double*, int, int, int);
template void matmul_backward<float>(float*, float*, float*, const float*, const float*, const float*, int, int,
                                     int);
template void matmul_backward<double>(double*, double*, double*, const double*, const double*, const double*, int,
                                      int, int);

}  // namespace tinyds
