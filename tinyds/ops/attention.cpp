// tinyds/ops/attention.cpp — causal scaled dot-product attention with grouped key/value heads (see attention.h).
//
// Shapes: B batch, T time, H query heads, Hkv key/value heads (H % Hkv == 0), Dk query/key dim, Dv value dim.
//   q (B, T, H, Dk), k (B, T, Hkv, Dk), v (B, T, Hkv, Dv), att (B, H, T, T), out (B, T, H, Dv)
// Query head h reads kv head g = h / (H / Hkv): MHA Hkv = H, GQA 1 < Hkv < H, MQA Hkv = 1.
// Per (b, h), with Q (T, Dk), K (T, Dk), V (T, Dv) that head's slices:
//   S = scale Q K^T;  P = causal row softmax of S (P[t, j] = 0 for j > t);  O = P V
// Gradients: dq, dk, dv WRITTEN (=); a kv head's dk/dv is the sum over the query heads that read it.
//
// One head's slice of a (B, T, nh, D) tensor is a (T, D) matrix whose rows are nh*D apart in memory: an Eigen
// Map with an OuterStride views it in place, so no head is ever copied out.
#include "tinyds/ops/attention.h"

#include <cmath>

#include <Eigen/Dense>

#include "tinyds/core/error.h"
#include "tinyds/core/parallel_error.h"
#include "tinyds/ops/vmath.h"

namespace tinyds {

template <typename real>
using MatR = Eigen::Matrix<real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename real>
using HeadView = Eigen::Map<MatR<real>, 0, Eigen::OuterStride<>>;
template <typename real>
using ConstHeadView = Eigen::Map<const MatR<real>, 0, Eigen::OuterStride<>>;

// Head h of batch row b of x (B, T, nh, D), viewed as a (T, D) matrix.
template <typename real>
static ConstHeadView<real> head(const real* x, int b, int h, int T, int nh, int D) {
  return ConstHeadView<real>(x + (static_cast<long>(b) * T * nh + h) * D, T, D, Eigen::OuterStride<>(nh * D));
}
template <typename real>
static HeadView<real> head(real* x, int b, int h, int T, int nh, int D) {
  return HeadView<real>(x + (static_cast<long>(b) * T * nh + h) * D, T, D, Eigen::OuterStride<>(nh * D));
}

static void check_dims(int B, int T, int H, int Hkv, int Dk, int Dv, const char* where) {
  if (B <= 0 || T <= 0 || H <= 0 || Hkv <= 0 || Dk <= 0 || Dv <= 0)
    throw_error(where, ": every dim must be positive (B=", B, " T=", T, " H=", H, " Hkv=", Hkv, " Dk=", Dk,
                " Dv=", Dv, ")");
  if (H % Hkv != 0) throw_error(where, ": H = ", H, " query heads is not a multiple of Hkv = ", Hkv, " kv heads");
}

// In place on A (T, T) holding scores q.k (unscaled): row t becomes softmax_j<=t(scale * A[t, j]), 0 for j > t.
// e (T) is aligned scratch: the exps run there, vectorised, with bits independent of A's address (vmath.h).
template <typename real>
static void causal_softmax_rows(Eigen::Map<MatR<real>>& A, ExpBuffer<real>& e, real scale) {
  const int T = static_cast<int>(A.rows());
  for (int t = 0; t < T; t++) {
    auto row = A.row(t).head(t + 1).array();  // the visible scores j <= t
    auto et = e.head(t + 1);
    et = scale * row.transpose();
    // Subtract the row max so every exponent is <= 0: exp cannot overflow, and the max term is exactly 1.
    et -= et.maxCoeff();
    exp_inplace_aligned(et.data(), t + 1);
    const double sum = lane_sum(t + 1, [&](long j) { return static_cast<double>(et[j]); });  // row sum in double
    row = (et * static_cast<real>(1.0 / sum)).transpose();
    // The causal mask: position t never sees a later position j > t.
    A.row(t).tail(T - t - 1).setZero();
  }
}

template <typename real>
void attention_forward(real* out,      // (B, T, H, Dv)
                       real* att,      // (B, H, T, T) saved for backward
                       const real* q,  // (B, T, H, Dk)
                       const real* k,  // (B, T, Hkv, Dk)
                       const real* v,  // (B, T, Hkv, Dv)
                       int B, int T, int H, int Hkv, int Dk, int Dv, real scale) {
  check_dims(B, T, H, Hkv, Dk, Dv, "attention_forward");
  const int group = H / Hkv;  // query heads per kv head
  [[maybe_unused]] const long work = static_cast<long>(B) * H * T * T * (Dk + Dv);  // multiply-adds
  // Every (b, h) pair is independent: one OpenMP task each (Eigen stays single-threaded inside the region).
  // Each task allocates its softmax scratch: a failed allocation is carried out of the region (core/parallel_error.h).
  FirstError failure;
#pragma omp parallel for schedule(static) if (work >= kParallelMinWork)
  for (int bh = 0; bh < B * H; bh++) failure.run([&] {
    const int b = bh / H, h = bh % H, g = h / group;
    auto Q = head(q, b, h, T, H, Dk);
    auto K = head(k, b, g, T, Hkv, Dk);
    auto V = head(v, b, g, T, Hkv, Dv);
    Eigen::Map<MatR<real>> A(att + static_cast<long>(bh) * T * T, T, T);
    A.noalias() = Q * K.transpose();  // (T, T); the upper triangle is computed and then masked
    ExpBuffer<real> e(exp_padded<real>(T));
    causal_softmax_rows(A, e, scale);
    auto O = head(out, b, h, T, H, Dv);
    // P is lower triangular: a triangular product skips the zero half.
    O.noalias() = A.template triangularView<Eigen::Lower>() * V;
  });
  failure.rethrow();
}

// forward was: S = scale Q K^T;  P = softmax_rows(S) (causal);  O = P V.   With dO = dout's (T, Dv) head slice:
//   dV  = P^T dO                                     (summed over the query heads of the group)
//   dP  = dO V^T
//   dS  = P .* (dP - rowsum(dP .* P))                 softmax Jacobian: dS_tj = P_tj (dP_tj - sum_i P_ti dP_ti)
//   dQ  = scale dS K;   dK = scale dS^T Q             (dK summed over the group)
// The loop runs over (b, kv head g) and visits the group's query heads inside it, so each thread is the only
// writer of its dk/dv rows (no atomics) and the sum over the group is added in a fixed order (deterministic).
template <typename real>
void attention_backward(real* dq,         // (B, T, H, Dk) written
                        real* dk,         // (B, T, Hkv, Dk) written
                        real* dv,         // (B, T, Hkv, Dv) written
                        const real* dout, // (B, T, H, Dv)
                        const real* q,    // (B, T, H, Dk)
                        const real* k,    // (B, T, Hkv, Dk)
                        const real* v,    // (B, T, Hkv, Dv)
                        const real* att,  // (B, H, T, T) from forward
                        int B, int T, int H, int Hkv, int Dk, int Dv, real scale) {
  check_dims(B, T, H, Hkv, Dk, Dv, "attention_backward");
  const int group = H / Hkv;
  [[maybe_unused]] const long work = static_cast<long>(B) * H * T * T * (Dk + Dv);  // multiply-adds
  FirstError failure;  // each task allocates its dS scratch (core/parallel_error.h)
#pragma omp parallel for schedule(static) if (work >= kParallelMinWork)
  for (int bg = 0; bg < B * Hkv; bg++) failure.run([&] {
    const int b = bg / Hkv, g = bg % Hkv;
    auto K = head(k, b, g, T, Hkv, Dk);
    auto V = head(v, b, g, T, Hkv, Dv);
    auto dK = head(dk, b, g, T, Hkv, Dk);
    auto dV = head(dv, b, g, T, Hkv, Dv);
    dK.setZero();  // written, not accumulated: start this (b, g) slice from 0, then sum the group's heads
    dV.setZero();
    MatR<real> dS(T, T);  // per-task scratch: dP, then overwritten in place by dS
    for (int h = g * group; h < (g + 1) * group; h++) {
      auto Q = head(q, b, h, T, H, Dk);
      auto dO = head(dout, b, h, T, H, Dv);
      auto dQ = head(dq, b, h, T, H, Dk);
      Eigen::Map<const MatR<real>> P(att + (static_cast<long>(b) * H + h) * T * T, T, T);
      dV.noalias() += P.transpose().template triangularView<Eigen::Upper>() * dO;  // P^T is upper triangular
      dS.noalias() = dO * V.transpose();  // dP
      for (int t = 0; t < T; t++) {
        const real* p = P.data() + static_cast<long>(t) * T;
        real* d = dS.data() + static_cast<long>(t) * T;
        // rowsum(dP .* P), a row reduction: double
        const real r = static_cast<real>(lane_sum(t + 1, [&](long j) { return static_cast<double>(p[j]) * d[j]; }));
        // scale is folded in here once, so dQ and dK below are plain products.
        for (int j = 0; j <= t; j++) d[j] = scale * p[j] * (d[j] - r);
        for (int j = t + 1; j < T; j++) d[j] = real(0);  // masked scores carry no gradient
      }
      dQ.noalias() = dS.template triangularView<Eigen::Lower>() * K;
      dK.noalias() += dS.transpose().template triangularView<Eigen::Upper>() * Q;
    }
  });
  failure.rethrow();
}

template void attention_forward<float>(float*, float*, const float*, const float*, const float*, int, int, int, int,
                                       int, int, float);
template void attention_forward<double>(double*, double*, const double*, const double*, const double*, int, int,
                                        int, int, int, int, double);
template void attention_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                        const float*, const float*, int, int, int, int, int, int, float);
template void attention_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                         const double*, const double*, int, int, int, int, int, int, double);

}  // namespace tinyds
