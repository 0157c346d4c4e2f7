// tests/mla_util.h — shared setup of the tests/mla_*.cpp files: small MLA dims, random weights in
// plain vectors (one per tensor) viewed as MlaParams, and a float/double cast of both.
//
// Shapes: B batch, T time, N = B*T, C width, H heads, D content/value head dim, R rope dim, L kv latent rank,
// Q query latent rank (see tinyds/model/mla.h).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "tests/util/ops_util.h"
#include "tinyds/core/rng.h"
#include "tinyds/model/mla.h"

namespace tinyds::test {

// B 2, T 7, C 16, H 2, D 4, R 4, L 6, Q 8: every dim distinct where it can be, so a swapped index shows up.
inline MlaDims<double> small_mla_dims(int pos0 = 0) {
  MlaDims<double> d;
  d.B = 2; d.T = 7; d.C = 16; d.H = 2; d.D = 4; d.R = 4; d.L = 6; d.Q = 8;
  d.eps = 1e-5; d.theta = 10000.0; d.pos0 = pos0;
  return d;
}

template <typename real>
MlaDims<real> cast_dims(const MlaDims<double>& d) {
  return MlaDims<real>{d.B, d.T, d.C, d.H, d.D, d.R, d.L, d.Q, static_cast<real>(d.eps), static_cast<real>(d.theta),
                       d.pos0};
}

// One tensor vector per parameter of the block (or of its gradient).
template <typename real>
struct MlaTensors {
  std::vector<real> wq_a, q_norm, wq_b, wkv_a, kv_norm, wkv_b, wo;
  MlaParams<real> view() {
    return MlaParams<real>{wq_a.data(), q_norm.data(), wq_b.data(), wkv_a.data(), kv_norm.data(), wkv_b.data(),
                           wo.data()};
  }
  std::vector<std::vector<real>*> all() { return {&wq_a, &q_norm, &wq_b, &wkv_a, &kv_norm, &wkv_b, &wo}; }
};

inline const char* mla_tensor_name(int i) {
  static const char* names[] = {"wq_a", "q_norm", "wq_b", "wkv_a", "kv_norm", "wkv_b", "wo"};
  return names[i];
}

// Matrices normal(0, 1/sqrt(fan_in)) so every projection's output is O(1) (a scale where wrong gradients are
// clearly visible and softmaxes are neither flat nor saturated); norm gains 0.5 + U[0, 1) (away from 1, so a
// missing gain shows up in the comparison and in its gradient).
inline MlaTensors<double> random_mla_weights(const MlaDims<double>& d, uint64_t seed) {
  const std::size_t C = d.C, H = d.H, D = d.D, R = d.R, L = d.L, Q = d.Q;
  auto mat = [&](std::size_t out, std::size_t in, uint64_t stream) {
    return randn(out * in, seed * 100 + stream, 1.0 / std::sqrt(static_cast<double>(in)));
  };
  auto gain = [&](std::size_t n, uint64_t stream) {
    Rng rng(seed, stream);
    std::vector<double> g(n);
    for (double& x : g) x = 0.5 + rng.uniform_double();
    return g;
  };
  MlaTensors<double> w;
  w.wq_a = mat(Q, C, 1); w.q_norm = gain(Q, 2); w.wq_b = mat(H * (D + R), Q, 3);
  w.wkv_a = mat(L + R, C, 4); w.kv_norm = gain(L, 5); w.wkv_b = mat(H * 2 * D, L, 6); w.wo = mat(C, H * D, 7);
  return w;
}

template <typename real>
MlaTensors<real> cast_tensors(MlaTensors<double>& w) {
  MlaTensors<real> r;
  std::vector<std::vector<real>*> dst = r.all();
  std::vector<std::vector<double>*> src = w.all();
  for (std::size_t i = 0; i < src.size(); i++) dst[i]->assign(src[i]->begin(), src[i]->end());
  return r;
}

inline MlaTensors<double> zeros_like(MlaTensors<double>& w) {
  MlaTensors<double> z;
  std::vector<std::vector<double>*> dst = z.all(), src = w.all();
  for (std::size_t i = 0; i < src.size(); i++) dst[i]->assign(src[i]->size(), 0.0);
  return z;
}

}  // namespace tinyds::test
