// tests/core/parallel_error_test.cpp — an exception inside an OpenMP region reaches the caller as itself
// (core/parallel_error.h): one thrown by a loop iteration, and std::bad_alloc from the per-thread scratch buffers
// of the cross-entropy, log-prob and MoE router kernels when the address space runs out.
//
// Shapes: N rows of V logits (N 2, V 2^22), router logits (N, E) with E 2^22: large enough that one thread's
// scratch (V doubles, V floats, or E floats + E ints) cannot fit in the headroom the tests leave.
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "tests/util/error_util.h"
#include "tinyds/core/error.h"
#include "tinyds/core/parallel_error.h"
#include "tinyds/ops/cross_entropy.h"
#include "tinyds/ops/moe_router.h"
#include "tinyds/posttrain/losses/logprobs.h"

using namespace tinyds;
using tinyds_test::error_of;

namespace {

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)  // clang's spelling
#define TINYDS_TEST_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(TINYDS_TEST_SANITIZED)
// A sanitizer reserves terabytes of shadow memory and aborts (instead of throwing) when an allocation fails.
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// While alive, the process may map only what it maps now plus `headroom` bytes (RLIMIT_AS, soft limit): a larger
// allocation then fails (operator new throws std::bad_alloc, Eigen too). The old limit is restored on destruction.
class AddressSpaceLimit {
 public:
  explicit AddressSpaceLimit(std::size_t headroom) {
    getrlimit(RLIMIT_AS, &old_);
    std::size_t pages = 0;
    std::ifstream("/proc/self/statm") >> pages;  // first field: total program size in pages
    rlimit lim = old_;
    lim.rlim_cur = pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) + headroom;
    if (old_.rlim_max != RLIM_INFINITY && lim.rlim_cur > old_.rlim_max) lim.rlim_cur = old_.rlim_max;
    active_ = setrlimit(RLIMIT_AS, &lim) == 0;
  }
  ~AddressSpaceLimit() { setrlimit(RLIMIT_AS, &old_); }
  bool active() const { return active_; }

 private:
  rlimit old_{};
  bool active_ = false;
};

constexpr int kN = 2;
constexpr int kV = 1 << 22;                   // 2^22 logits per row: N*V far above kParallelMinWork (2^15)
constexpr std::size_t kHeadroom = 4u << 20;   // 4 MiB: less than one thread's scratch (>= 16 MiB in every kernel)

// Runs f under the address-space limit; returns "bad_alloc", "none" or the other exception's what(). Nothing else
// (no doctest macro, no string growth) runs while the limit holds.
template <typename F>
std::string outcome_under_limit(F&& f) {
  int result = 0;  // 0 none, 1 bad_alloc, 2 other
  std::string other;
  {
    AddressSpaceLimit limit(kHeadroom);
    REQUIRE(limit.active());
    try {
      f();
    } catch (const std::bad_alloc&) {
      result = 1;
    } catch (const std::exception& e) {
      result = 2;
      try { other = e.what(); } catch (...) {}
    }
  }
  return result == 0 ? "none" : result == 1 ? "bad_alloc" : other;
}

}  // namespace

TEST_CASE("core/parallel_error: the first exception of a parallel loop reaches the caller, the other iterations run") {
  // Iterations 37 and 80 throw; which of them is recorded depends on thread timing, so either message is right,
  // but the run must not terminate and every other iteration must have run.
  FirstError failure;
  std::vector<int> ran(100, 0), completed(100, 0);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < 100; i++)
    completed[i] = failure.run([&] {
      if (i == 37 || i == 80) throw_error("iteration ", i, " failed");
      ran[i] = 1;
    });
  const std::string msg = error_of([&] { failure.rethrow(); });
  CHECK_MESSAGE((msg == "iteration 37 failed" || msg == "iteration 80 failed"), msg);
  for (int i = 0; i < 100; i++) {
    CHECK(ran[i] == (i != 37 && i != 80));
    CHECK(completed[i] == ran[i]);
  }
  FirstError none;
  CHECK(error_of([&] { none.rethrow(); }) == "<no error>");
}

TEST_CASE("core/parallel_error: a per-thread scratch buffer that cannot be allocated reaches the caller as bad_alloc") {
  if (kSanitized) return;  // see kSanitized
  // Before the kernels carried it out of their OpenMP regions, std::bad_alloc there called std::terminate and
  // killed the whole test process. After the limit is lifted the same calls succeed, with the values of all-zero
  // logits (uniform: log-prob -log V, cross-entropy log V; router: every sigmoid score 1/2, expert 0 on the tie).
  std::vector<float> logits(static_cast<std::size_t>(kN) * kV, 0.0f), out(kN), lse(kN);
  std::vector<int> targets(kN, 3);
  // Warm the OpenMP thread pool up first: creating a thread's stack under the limit would fail inside the runtime.
  logprobs_forward(out.data(), logits.data(), targets.data(), kN, kV);
  const double log_v = std::log(static_cast<double>(kV));

  SUBCASE("logprobs_forward (a row of V doubles per thread)") {
    CHECK(outcome_under_limit([&] { logprobs_forward(out.data(), logits.data(), targets.data(), kN, kV); }) ==
          "bad_alloc");
    logprobs_forward(out.data(), logits.data(), targets.data(), kN, kV);
    CHECK(out[1] == doctest::Approx(-log_v).epsilon(1e-6));  // float rounding of log V ~ 15
  }
  SUBCASE("cross_entropy_forward (an aligned row of V floats per thread)") {
    CHECK(outcome_under_limit([&] {
            cross_entropy_forward(out.data(), lse.data(), logits.data(), targets.data(), kN, kV);
          }) == "bad_alloc");
    cross_entropy_forward(out.data(), lse.data(), logits.data(), targets.data(), kN, kV);
    CHECK(out[1] == doctest::Approx(log_v).epsilon(1e-6));
  }
  SUBCASE("moe_router_forward (E floats and E ints per thread)") {
    const int E = kV, K = 1;
    std::vector<float> scores(static_cast<std::size_t>(kN) * E), w(kN * K);
    std::vector<int> idx(kN * K, -1);
    auto route = [&] {
      moe_router_forward(scores.data(), idx.data(), w.data(), logits.data(), static_cast<const float*>(nullptr), kN,
                         E, K, ScoreFunc::sigmoid, 1.0f, 1, 1);
    };
    CHECK(outcome_under_limit(route) == "bad_alloc");
    route();
    CHECK(idx[1] == 0);
    CHECK(scores[5] == 0.5f);
    CHECK(w[1] == 1.0f);
  }
}
