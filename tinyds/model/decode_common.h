// tinyds/model/decode_common.h — small helpers shared by the kv-cache decoders (mla_decode.cpp,
// decode_dense.cpp): one new query token attends over the cached positions 0..p.
//
// Shapes: n cached positions (p + 1), w vector width.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <Eigen/Dense>

#include "tinyds/core/ledger.h"
#include "tinyds/device/ops.h"

namespace tinyds {

// A decode step's temporary array of n values on the current device: a plain std::vector on the CPU (as the
// decoders always had), ledgered device memory on cuda (the host must not touch it; Category::activations).
template <typename real>
class DecodeScratch {
 public:
  explicit DecodeScratch(std::size_t n) {
    if (dev::on_cuda<real>()) {
      dev_.reset(n, Role::policy, Category::activations, Place::device);
      data_ = dev_.data();
    } else {
      host_.assign(n, real(0));
      data_ = host_.data();
    }
  }
  real* data() { return data_; }

 private:
  std::vector<real> host_;
  Buffer<real> dev_;
  real* data_ = nullptr;
};

}  // namespace tinyds

namespace tinyds::decode {

// s[j] = q . rows[j * stride + 0..w)  for j < n: q (w), rows (n, stride) whose first w values are used. As Eigen's
// matrix-vector product rows q: partial sums in SIMD registers, added in a fixed order (the same result for every
// call). A plain loop per row is a chain of dependent adds the compiler may not reorder (no fast-math): the rollout
// of `tinyds bench --rollout` (small, 1 thread) spent half its time in such loops (notebooks/EXPERIMENTS.md,
// "Sampling speed").
template <typename real>
inline void dots(real* s, const real* q, const real* rows, long stride, int n, int w) {
  using Mat = Eigen::Matrix<real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Vec = Eigen::Matrix<real, Eigen::Dynamic, 1>;
  const Eigen::Map<const Mat, 0, Eigen::OuterStride<>> r(rows, n, w, Eigen::OuterStride<>(stride));
  Eigen::Map<Vec>(s, n).noalias() = r * Eigen::Map<const Vec>(q, w);
}

// s (n) = softmax(scale * s) in place. Every cached position is visible: the causal mask of training is the
// fact that positions after p are not in the cache yet.
template <typename real>
inline void softmax_scaled(real* s, int n, real scale) {
  real mx = scale * s[0];
  for (int j = 1; j < n; j++) mx = std::max(mx, scale * s[j]);
  double sum = 0.0;  // a row reduction: summed in double, like the training attention
  for (int j = 0; j < n; j++) {
    s[j] = std::exp(scale * s[j] - mx);  // minus the max: every exponent <= 0, so exp cannot overflow
    sum += s[j];
  }
  const real inv = static_cast<real>(1.0 / sum);
  for (int j = 0; j < n; j++) s[j] *= inv;
}

// out (w) = sum_j p[j] * rows[j * stride + 0..w)  for j < n: the probability-weighted sum of cached rows, as
// Eigen's matrix-vector product rows^T p (its columns in SIMD registers across the n rows).
template <typename real>
inline void weighted_sum(real* out, const real* p, const real* rows, long stride, int n, int w) {
  using Mat = Eigen::Matrix<real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Vec = Eigen::Matrix<real, Eigen::Dynamic, 1>;
  const Eigen::Map<const Mat, 0, Eigen::OuterStride<>> r(rows, n, w, Eigen::OuterStride<>(stride));
  Eigen::Map<Vec>(out, w).noalias() = r.transpose() * Eigen::Map<const Vec>(p, n);
}

}  // namespace tinyds::decode
