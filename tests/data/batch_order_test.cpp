// tests/data/batch_order_test.cpp — the data order: per-epoch permutations.
#include <doctest/doctest.h>

#include "tests/util/error_util.h"

#include <set>
#include <vector>

#include "tinyds/data/batch_order.h"

using tinyds::BatchOrder;

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

TEST_CASE("data/batch_order: no rows to order is an error") {
  CHECK(tinyds_test::has(tinyds_test::error_of([] { BatchOrder(0, 1); }), "no rows"));
}
