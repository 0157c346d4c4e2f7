// tinyds/data/batch_order.h — which training rows each step uses.
//
// The data order is a seeded permutation of the n rows per epoch; the rows of step s are positions s*B .. s*B+B-1
// of the concatenated epochs. What a step sees depends only on (seed, step), which is what makes --resume exact.
//
// Length grouping (data.length_group = K > 1): the K*B rows of steps wK .. wK+K-1 are the same positions of the
// order as without grouping, sorted by length and cut into K batches of B rows of similar length, which the K steps
// take in a seeded order of their own. A batch is cut to its longest row (data/batch.h), so grouping removes most
// of the padding: on levels 1-2 with B 8, real tokens are ~79% of the computed ones without grouping and ~99% with
// K = 32 (the rest is padding). It still depends only on (seed, step).
// Grouped steps are faster but each batch holds one level, and it learned less per step: no gain at equal time, so
// the presets leave it off (notebooks/EXPERIMENTS.md, "Settings that did not help").
#pragma once
#include <cstdint>
#include <vector>

#include "tinyds/core/rng.h"

namespace tinyds {

class BatchOrder {
 public:
  BatchOrder(int n, uint64_t seed);
  // Rows of step `step`: positions step*B .. step*B+B-1 of the order.
  std::vector<int> rows(int step, int B);
  // Rows of step `step` with length grouping over K steps; length[i] is row i's length (any unit).
  std::vector<int> grouped_rows(int step, int B, int K, const std::vector<int>& length);

 private:
  const std::vector<int>& permutation(int64_t epoch);
  int n_;
  Rng rng_, group_rng_;
  int64_t epoch_ = -1;
  std::vector<int> perm_;
};

}  // namespace tinyds
