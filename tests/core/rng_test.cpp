// tests/core/rng_test.cpp — the counter-based Rng: reproducibility, independence of seeds and streams,
// thread-count invariance of fill_normal, and the moments of its distributions.
//
// Statistical checks use a fixed seed, so they are deterministic; their tolerances are 5 standard errors
// of the estimate (a correct generator would fail one with probability ~6e-7 for a fresh seed).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tinyds/core/rng.h"

using tinyds::Rng;

TEST_CASE("core/rng: same seed and stream give the same bits") {
  Rng a(42, 3), b(42, 3);
  for (int i = 0; i < 1000; i++) REQUIRE(a.next_u64() == b.next_u64());
  // The sequential interface is the indexed one with a counter: value k is at(k), whatever the order of access.
  Rng c(42, 3);
  CHECK(c.at(500) == Rng(42, 3).at(500));
  for (int i = 0; i < 10; i++) CHECK(c.next_u64() == Rng(42, 3).at(i));
  CHECK(c.counter() == 10);
  c.set_counter(500);
  CHECK(c.next_u64() == c.at(500));
  // normal / uniform from index i are pure functions of (seed, stream, i).
  CHECK(Rng(7).normal_at(12345) == Rng(7).normal_at(12345));
  CHECK(Rng(7).uniform_at(99) == Rng(7).uniform_at(99));
}

TEST_CASE("core/rng: different seeds, streams and splits give different sequences") {
  const int n = 256;
  auto count_equal = [n](Rng x, Rng y) {
    int eq = 0;
    for (int i = 0; i < n; i++) eq += x.next_u64() == y.next_u64();
    return eq;
  };
  // Two independent 64-bit streams agree at a position with probability 2^-64: any agreement is a bug.
  CHECK(count_equal(Rng(1), Rng(2)) == 0);
  CHECK(count_equal(Rng(1, 0), Rng(1, 1)) == 0);
  CHECK(count_equal(Rng(0, 1), Rng(1, 0)) == 0);  // seed and stream are not interchangeable
  Rng parent(5);
  CHECK(count_equal(parent.split(1), parent.split(2)) == 0);
  CHECK(count_equal(parent.split(0), parent) == 0);
  // A stream must not be a shifted copy of another (a common counter-RNG mistake): compare with offsets too.
  Rng s0(9, 0), s1(9, 1);
  int shifted = 0;
  for (uint64_t i = 0; i < 64; i++)
    for (uint64_t k = 0; k < 64; k++) shifted += s0.at(i) == s1.at(k);
  CHECK(shifted == 0);
}

TEST_CASE("core/rng: fill_normal is bitwise identical with 1 and 2 threads") {
  const std::size_t n = 10007;  // odd size: static scheduling splits it unevenly
  std::vector<float> one(n), two(n);
  std::vector<double> one_d(n), two_d(n);
  Rng rng(2024, 7);
#ifdef _OPENMP
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
#endif
  tinyds::fill_normal(one.data(), n, 0.02f, rng);
  tinyds::fill_normal(one_d.data(), n, 0.5, rng);
#ifdef _OPENMP
  omp_set_num_threads(2);
#endif
  tinyds::fill_normal(two.data(), n, 0.02f, rng);
  tinyds::fill_normal(two_d.data(), n, 0.5, rng);
#ifdef _OPENMP
  omp_set_num_threads(saved);
#endif
  CHECK(std::memcmp(one.data(), two.data(), n * sizeof(float)) == 0);
  CHECK(std::memcmp(one_d.data(), two_d.data(), n * sizeof(double)) == 0);
  // Element i is normal_at(i) * std (computed serially here): the fill depends on the index only.
  bool match = true;
  for (std::size_t i = 0; i < n; i++) match = match && one[i] == rng.normal_at(i) * 0.02f;
  CHECK(match);
  // fill_normal does not consume the generator's sequential counter (it takes a const Rng&).
  CHECK(rng.counter() == 0);
}

TEST_CASE("core/rng: normal draws have mean 0 and standard deviation 1") {
  const int n = 100000;
  Rng rng(31337);
  double sum = 0, sum2 = 0, sum4 = 0;
  for (int i = 0; i < n; i++) {
    double x = rng.normal();
    REQUIRE(std::isfinite(x));
    sum += x;
    sum2 += x * x;
    sum4 += x * x * x * x;
  }
  double mean = sum / n;
  double var = sum2 / n - mean * mean;
  // Standard error of the mean: sigma / sqrt(n) = 1/sqrt(1e5) = 0.00316; 5 sigma = 0.0158.
  CHECK(std::fabs(mean) < 5.0 / std::sqrt(n));
  // Standard error of the sample std of a normal: sigma / sqrt(2n) = 0.00224; 5 sigma = 0.0112.
  CHECK(std::fabs(std::sqrt(var) - 1.0) < 5.0 / std::sqrt(2.0 * n));
  // Fourth moment E[x^4] = 3 for a normal (a uniform or a clipped draw would fail); its standard error is
  // sqrt((E[x^8] - 9) / n) = sqrt((105 - 9) / n) = 0.031; 5 sigma = 0.155.
  CHECK(std::fabs(sum4 / n - 3.0) < 5.0 * std::sqrt(96.0 / n));
}

TEST_CASE("core/rng: uniform stays in 0..1 (1 excluded) with mean 1/2") {
  const int n = 100000;
  Rng rng(11);
  double sum = 0, lo = 1, hi = 0;
  for (int i = 0; i < n; i++) {
    float u = rng.uniform();
    sum += u;
    lo = std::min<double>(lo, u);
    hi = std::max<double>(hi, u);
  }
  CHECK(lo >= 0.0);
  CHECK(hi < 1.0);
  // Uniform(0,1) has std sqrt(1/12) = 0.2887; standard error of the mean 0.2887 / sqrt(1e5) = 0.00091; 5 sigma.
  CHECK(std::fabs(sum / n - 0.5) < 5.0 * std::sqrt(1.0 / 12.0 / n));
  // Both ends of the range are reached to within ~1e-4 (the chance of a gap of 1e-4 at an end is e^-10).
  CHECK(lo < 1e-4);
  CHECK(hi > 1.0 - 1e-4);
  // The largest value the 24-bit construction can produce is still below 1 in float.
  CHECK(static_cast<float>((uint64_t(1) << 24) - 1) * (1.0f / 16777216.0f) < 1.0f);
  // uniform_double: 53 bits, also in [0, 1).
  Rng d(12);
  for (int i = 0; i < 1000; i++) {
    double u = d.uniform_double();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
  }
}

TEST_CASE("core/rng: randint stays in range and hits every value") {
  Rng rng(77);
  // Small range: 7 values, 7000 draws; each value expected 1000 times with std sqrt(1000 * 6/7) = 29.3.
  // 5 sigma = 146: every count must lie in [854, 1146].
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 7000; i++) {
    int64_t v = rng.randint(-3, 3);
    REQUIRE(v >= -3);
    REQUIRE(v <= 3);
    counts[static_cast<std::size_t>(v + 3)]++;
  }
  for (int k = 0; k < 7; k++) {
    CAPTURE(k);
    CHECK(counts[k] > 1000 - 146);
    CHECK(counts[k] < 1000 + 146);
  }
  // A range of one value, and a range at the top of int64.
  for (int i = 0; i < 10; i++) CHECK(rng.randint(5, 5) == 5);
  for (int i = 0; i < 100; i++) {
    int64_t v = rng.randint(INT64_MAX - 1, INT64_MAX);
    REQUIRE(v >= INT64_MAX - 1);
  }
}
