// tinyds/data/batch_order.h — which training rows each step uses.
//
// The data order is a seeded permutation of the n rows per epoch; the rows of step s are positions s*B .. s*B+B-1
// of the concatenated epochs. What a step sees depends only on (seed, step), which is what makes --resume exact.
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

 private:
  const std::vector<int>& permutation(int64_t epoch);
  int n_;
  Rng rng_;
  int64_t epoch_ = -1;
  std::vector<int> perm_;
};

}  // namespace tinyds
