// tests/kernels/moe_cases_util.h — inputs shared by the MoE kernel-table rows (moe_*_cases.cpp): seeded routings
// and int outputs as the table's float vectors.
//
// Shapes: N tokens, E routed experts, K experts per token.
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace tinyds::test {

// The table compares float vectors; ints below 2^24 convert exactly, and a row whose atol + rtol * max|value| is
// below 1 then demands exact equality of every index (an index off by one misses by 1).
inline std::vector<float> as_floats(const std::vector<int>& v) { return std::vector<float>(v.begin(), v.end()); }

// topk_idx (N, K): each token's K experts are distinct, drawn uniformly from [0, n_used) (n_used <= E: with
// n_used < E the experts n_used..E-1 get no token, which exercises empty slices).
inline std::vector<int> random_routing(int N, int K, int E, uint64_t seed, int n_used = -1) {
  if (n_used < 0) n_used = E;
  std::mt19937_64 rng(seed);
  std::vector<int> experts(n_used), idx(static_cast<size_t>(N) * K);
  for (int n = 0; n < N; n++) {
    std::iota(experts.begin(), experts.end(), 0);
    std::shuffle(experts.begin(), experts.end(), rng);
    std::copy(experts.begin(), experts.begin() + K, idx.begin() + static_cast<long>(n) * K);
  }
  return idx;
}

}  // namespace tinyds::test
