// tinyds/train/paired_change.cpp — McNemar's paired comparison of two checkpoints on the same problems.
#include "tinyds/train/paired_change.h"

#include <algorithm>
#include <cmath>

#include "tinyds/core/error.h"

namespace tinyds {

PairedChange paired_change(const std::vector<char>& a_right, const std::vector<char>& b_right) {
  if (a_right.size() != b_right.size() || a_right.empty())
    throw_error("paired_change: the two evaluations must cover the same, non-empty set of problems (", a_right.size(),
                " and ", b_right.size(), " results)");
  PairedChange r;
  r.n = static_cast<int>(a_right.size());
  for (int i = 0; i < r.n; i++) {
    if (a_right[i] && !b_right[i]) r.only_a++;
    if (b_right[i] && !a_right[i]) r.only_b++;
  }
  const double n = r.n, diff = r.only_b - r.only_a;
  r.change = diff / n;
  r.se = std::sqrt(std::max(0.0, r.only_a + r.only_b - diff * diff / n)) / n;
  // The binomial tail in logs: 2^-m underflows a double beyond m ~ 1074 discordant problems.
  const int m = r.only_a + r.only_b, k = std::min(r.only_a, r.only_b);
  double tail = 0;
  for (int i = 0; i <= k; i++)
    tail += std::exp(std::lgamma(m + 1.0) - std::lgamma(i + 1.0) - std::lgamma(m - i + 1.0) - m * std::log(2.0));
  r.p_value = std::min(1.0, 2 * tail);
  return r;
}

std::optional<PairedChange> paired_change_if_comparable(const std::vector<char>& a_right,
                                                        const std::vector<char>& b_right) {
  if (a_right.size() != b_right.size() || a_right.empty()) return std::nullopt;
  return paired_change(a_right, b_right);
}

}  // namespace tinyds
