// tests/data/batch_order_test.cpp — the data order: per-epoch permutations and length grouping.
#include <doctest/doctest.h>

#include "tests/util/error_util.h"

#include <algorithm>
#include <set>
#include <vector>

#include "tinyds/core/rng.h"
#include "tinyds/data/batch_order.h"

using tinyds::BatchOrder;

namespace {

// Lengths drawn uniformly from [lo, hi], the spread of level 1-2 problems (~60-140 characters).
std::vector<int> random_lengths(int n, int lo, int hi, uint64_t seed) {
  tinyds::Rng r(seed, 1);
  std::vector<int> len(n);
  for (int& l : len) l = static_cast<int>(r.randint(lo, hi));
  return len;
}

// Real tokens / computed tokens when every batch is cut to its longest row.
double real_fraction(const std::vector<std::vector<int>>& batches, const std::vector<int>& len) {
  double real = 0, computed = 0;
  for (const auto& b : batches) {
    int longest = 0;
    for (int i : b) { real += len[i]; longest = std::max(longest, len[i]); }
    computed += static_cast<double>(longest) * b.size();
  }
  return real / computed;
}

}  // namespace

TEST_CASE("data/batch_order: batch order: every row once per epoch, the same for the same seed") {
  const int n = 96, B = 8;
  BatchOrder a(n, 5), b(n, 5), c(n, 6);
  for (int epoch = 0; epoch < 2; epoch++) {
    std::multiset<int> seen;
    bool differs = false;
    for (int s = epoch * n / B; s < (epoch + 1) * n / B; s++) {
      std::vector<int> ra = a.rows(s, B);
      CHECK(ra == b.rows(s, B));
      differs = differs || ra != c.rows(s, B);
      seen.insert(ra.begin(), ra.end());
    }
    CHECK(seen.size() == static_cast<std::size_t>(n));
    for (int i = 0; i < n; i++) CHECK(seen.count(i) == 1);
    CHECK(differs);  // another seed, another order
  }
}

TEST_CASE("data/batch_order: length grouping: the same rows as without it, regrouped into batches of similar length") {
  const int n = 5000, B = 8, K = 32;
  const std::vector<int> len = random_lengths(n, 60, 140, 3);
  BatchOrder plain(n, 11), grouped(n, 11);
  std::vector<std::vector<int>> plain_batches, grouped_batches;
  int unsorted_windows = 0;
  for (int w = 0; w < 10; w++) {
    std::multiset<int> want, got;
    std::vector<std::vector<int>> window;
    for (int s = w * K; s < (w + 1) * K; s++) {
      std::vector<int> p = plain.rows(s, B), g = grouped.grouped_rows(s, B, K, len);
      REQUIRE(g.size() == static_cast<std::size_t>(B));
      want.insert(p.begin(), p.end());
      got.insert(g.begin(), g.end());
      plain_batches.push_back(p);
      grouped_batches.push_back(g);
      window.push_back(g);
    }
    CHECK(got == want);  // nothing dropped or repeated: only the grouping into steps changed
    // The batches of a window are consecutive runs of the window's rows sorted by length: any two do not overlap.
    for (const auto& x : window)
      for (const auto& y : window) {
        if (&x == &y) continue;
        auto [xmin, xmax] = std::minmax_element(x.begin(), x.end(), [&](int a, int b) { return len[a] < len[b]; });
        auto [ymin, ymax] = std::minmax_element(y.begin(), y.end(), [&](int a, int b) { return len[a] < len[b]; });
        CHECK((len[*xmax] <= len[*ymin] || len[*ymax] <= len[*xmin]));
      }
    // The steps do not go from short to long: a window whose batches come in sorted order would be a curriculum.
    bool sorted = true;
    for (int k = 1; k < K; k++) sorted = sorted && len[window[k][0]] >= len[window[k - 1][0]];
    unsorted_windows += !sorted;
  }
  CHECK(unsorted_windows == 10);  // the chance that a seeded shuffle of 32 batches is sorted is 1/32!
  // Padding: a batch of 8 rows drawn from U[60, 140] is cut to E[max] = 60 + 80 * 8/9 ~ 131 for a mean of 100, so
  // ~0.76 of the computed tokens are real; consecutive rows of 256 sorted ones span ~80 * 8/256 = 2.5, so > 0.95.
  const double before = real_fraction(plain_batches, len), after = real_fraction(grouped_batches, len);
  CHECK(before == doctest::Approx(0.76).epsilon(0.05));
  CHECK(after > 0.95);
  // Deterministic in (seed, step): a fresh order gives the same rows for any step, in any call order (--resume).
  BatchOrder again(n, 11);
  CHECK(again.grouped_rows(77, B, K, len) == grouped_batches[77]);
  CHECK(again.grouped_rows(3, B, K, len) == grouped_batches[3]);
}

TEST_CASE("data/batch_order: length grouping over 0 or 1 steps is the plain order, and a wrong length table is an error") {
  const int n = 40, B = 4;
  const std::vector<int> len = random_lengths(n, 1, 9, 2);
  BatchOrder a(n, 1), b(n, 1);
  for (int s = 0; s < 25; s++) {
    CHECK(a.grouped_rows(s, B, 0, len) == b.rows(s, B));
    CHECK(a.grouped_rows(s, B, 1, {}) == b.rows(s, B));
  }
  CHECK(tinyds_test::has(tinyds_test::error_of([&] { a.grouped_rows(0, B, 4, std::vector<int>(7)); }),
                         "7 lengths for 40 rows"));
  CHECK(tinyds_test::has(tinyds_test::error_of([] { BatchOrder(0, 1); }), "no rows"));
}
