// tinyds/ops/matmul.cpp — the linear layer as a GEMM on row-major Eigen maps (see matmul.h).
//
// Shapes: N rows (B*T), IC input width, OC output width.
//   out (N, OC) = inp (N, IC) @ weight^T,   weight (OC, IC) as in PyTorch's nn.Linear (no bias: DeepSeek-V3's
//   linear layers have none).
// Gradients: dinp WRITTEN (=), dweight ACCUMULATED (+=).
// Eigen::Map views the caller's memory without copying; noalias() tells Eigen the destination does not overlap
// the operands, so it writes the product straight into it (no temporary).
//
// Threading: each OpenMP thread computes its own contiguous block of OUTPUT rows with a single-threaded Eigen
// GEMM (Eigen runs single-threaded inside a parallel region). Measured on the 2-core benchmark machine this is
// 2-4x faster than letting Eigen split one GEMM itself (for dW += dY^T X, whose inner dimension N = B*T is
// large, Eigen's own split was ~4x slower), and every output element is computed by one thread in a fixed
// order, so results repeat exactly for a fixed thread count. They can differ in the last bits between thread
// counts: Eigen picks its depth blocking from the shape of each thread's block, and for dW += dY^T X the depth
// N = B*T is long enough to be split (measured: N 2048, IC 256, OC 683 differs between 1 and 2 threads; out and
// dinp did not).
#include "tinyds/ops/matmul.h"

#include <Eigen/Dense>

#include "tinyds/core/parallel_error.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tinyds {

template <typename real>
using MatR = Eigen::Matrix<real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Runs f(first_row, num_rows) on contiguous blocks of `rows`, one block per OpenMP thread. Small products
// (under ~1 MFLOP) run on the calling thread: a parallel region costs more than they do.
template <typename F>
void for_row_blocks(int rows, long flops, F&& f) {
#ifdef _OPENMP
  if (flops >= (1L << 20) && rows >= 2 && !omp_in_parallel()) {
    FirstError failure;  // Eigen may allocate blocking space: an exception must not leave the region
#pragma omp parallel
    {
      const int nt = omp_get_num_threads(), t = omp_get_thread_num();
      const int r0 = static_cast<int>(static_cast<long>(rows) * t / nt);
      const int r1 = static_cast<int>(static_cast<long>(rows) * (t + 1) / nt);
      if (r1 > r0) failure.run([&] { f(r0, r1 - r0); });
    }
    failure.rethrow();
    return;
  }
#endif
  f(0, rows);
}

template <typename real>
void matmul_forward(real* out,           // (N, OC)
                    const real* inp,     // (N, IC)
                    const real* weight,  // (OC, IC)
                    int N, int IC, int OC) {
  Eigen::Map<const MatR<real>> X(inp, N, IC);
  Eigen::Map<const MatR<real>> W(weight, OC, IC);
  Eigen::Map<MatR<real>> Y(out, N, OC);
  for_row_blocks(N, static_cast<long>(N) * IC * OC, [&](int r0, int n) {
    Y.middleRows(r0, n).noalias() = X.middleRows(r0, n) * W.transpose();
  });
}

// forward was: out = inp @ weight^T
//   dinp    = dout @ weight            (N, OC) x (OC, IC)
//   dweight += dout^T @ inp            (OC, N) x (N, IC)
template <typename real>
void matmul_backward(real* dinp,          // (N, IC) written, or nullptr (e.g. the first layer's input)
                     real* dweight,       // (OC, IC) accumulated
                     const real* dout,    // (N, OC)
                     const real* inp,     // (N, IC)
                     const real* weight,  // (OC, IC)
                     int N, int IC, int OC) {
  Eigen::Map<const MatR<real>> dY(dout, N, OC);
  Eigen::Map<const MatR<real>> X(inp, N, IC);
  Eigen::Map<const MatR<real>> W(weight, OC, IC);
  const long flops = static_cast<long>(N) * IC * OC;
  if (dinp) {
    Eigen::Map<MatR<real>> dX(dinp, N, IC);
    for_row_blocks(N, flops, [&](int r0, int n) { dX.middleRows(r0, n).noalias() = dY.middleRows(r0, n) * W; });
  }
  // dW's rows are output channels: thread t owns rows [r0, r0+n) and reads columns [r0, r0+n) of dY.
  Eigen::Map<MatR<real>> dW(dweight, OC, IC);
  for_row_blocks(OC, flops, [&](int r0, int n) {
    dW.middleRows(r0, n).noalias() += dY.middleCols(r0, n).transpose() * X;
  });
}

template void matmul_forward<float>(float*, const float*, const float*, int, int, int);
template void matmul_forward<double>(double*, const double*, const double*, int, int, int);
template void matmul_backward<float>(float*, float*, const float*, const float*, const float*, int, int, int);
template void matmul_backward<double>(double*, double*, const double*, const double*, const double*, int, int, int);

}  // namespace tinyds
