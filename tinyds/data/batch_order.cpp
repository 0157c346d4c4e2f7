// tinyds/data/batch_order.cpp — see batch_order.h.
#include "tinyds/data/batch_order.h"

#include <algorithm>

#include "tinyds/core/error.h"

namespace tinyds {

BatchOrder::BatchOrder(int n, uint64_t seed) : n_(n), rng_(seed, 0xda7a), group_rng_(seed, 0x9e0b) {
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

std::vector<int> BatchOrder::grouped_rows(int step, int B, int K, const std::vector<int>& length) {
  if (K <= 1) return rows(step, B);
  if (static_cast<int>(length.size()) != n_)
    throw_error("BatchOrder: ", length.size(), " lengths for ", n_, " rows");
  const int w = step / K, j = step % K;
  std::vector<int> all = rows(w, K * B);  // positions w*K*B .. (w+1)*K*B - 1: the K steps' rows, ungrouped
  std::stable_sort(all.begin(), all.end(), [&](int a, int b) { return length[a] < length[b]; });
  std::vector<int> batch_of(K);  // step wK + j takes the batch_of[j]-th shortest batch
  for (int k = 0; k < K; k++) batch_of[k] = k;
  Rng r = group_rng_.split(static_cast<uint64_t>(w));
  for (int k = K - 1; k > 0; k--) std::swap(batch_of[k], batch_of[r.randint(0, k)]);  // Fisher-Yates
  return std::vector<int>(all.begin() + static_cast<int64_t>(batch_of[j]) * B,
                          all.begin() + static_cast<int64_t>(batch_of[j] + 1) * B);
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
