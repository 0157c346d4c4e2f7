// tinyds/data/batch_order.cpp — see batch_order.h.
#include "tinyds/data/batch_order.h"

#include <algorithm>

#include "tinyds/core/error.h"

namespace tinyds {

BatchOrder::BatchOrder(int n, uint64_t seed) : n_(n), rng_(seed, 0xda7a) {
  if (n < 1) throw_error("BatchOrder: no rows to order (n = ", n, ")");
}

std::vector<int> BatchOrder::rows(int step, int B) {
  std::vector<int> idx(B);
  for (int r = 0; r < B; r++) {
    int64_t g = static_cast<int64_t>(step) * B + r;
    idx[r] = permutation(g / n_)[g % n_];
  }
  return idx;
}

const std::vector<int>& BatchOrder::permutation(int64_t epoch) {
  if (epoch != epoch_) {
    perm_.resize(n_);
    for (int i = 0; i < n_; i++) perm_[i] = i;
    Rng r = rng_.split(static_cast<uint64_t>(epoch));
    for (int i = n_ - 1; i > 0; i--) std::swap(perm_[i], perm_[r.randint(0, i)]);  // Fisher-Yates
    epoch_ = epoch;
  }
  return perm_;
}

}  // namespace tinyds
