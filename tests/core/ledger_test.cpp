// tests/core/ledger_test.cpp — the memory ledger: exact current/peak bytes per (role, category) cell and in total.
//
// The ledger is process-global and other tests allocate through it too, so every check here is a delta against
// the values read at the start of the test (after reset_peaks, which sets each peak to the current value).
// Expected values are plain sums of the sizes allocated here (n elements * sizeof(T)); no tolerance: bytes are exact.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>

#include "tinyds/core/error.h"
#include "tinyds/core/ledger.h"

using tinyds::Buffer;
using tinyds::Category;
using tinyds::Ledger;
using tinyds::Role;

namespace {

// Snapshot of one cell and the totals at the start of a test.
struct Base {
  std::size_t cur, peak, cur_total, peak_total;
  Base(Role r, Category c) {
    Ledger& L = Ledger::global();
    L.reset_peaks();
    cur = L.current(r, c);
    peak = L.peak(r, c);
    cur_total = L.current_total();
    peak_total = L.peak_total();
  }
};

}  // namespace

TEST_CASE("core/ledger: current and peak bytes per cell are exact") {
  Ledger& L = Ledger::global();
  const Role R = Role::critic;
  const Category W = Category::weights, G = Category::grads;
  Base bw(R, W), bg(R, G);
  CHECK(bw.peak == bw.cur);  // reset_peaks makes every peak equal to the current value

  // Odd sizes on purpose: the ledger counts the bytes asked for, not the 64-byte-rounded allocation.
  const std::size_t a = 1000 * sizeof(float), b = 37 * sizeof(double), c = 3 * sizeof(int32_t);
  {
    Buffer<float> x(1000, R, W);
    Buffer<double> y(37, R, W);
    CHECK(L.current(R, W) - bw.cur == a + b);
    CHECK(L.peak(R, W) - bw.cur == a + b);
    {
      Buffer<int32_t> z(3, R, G);
      CHECK(L.current(R, G) - bg.cur == c);
      CHECK(L.current(R, W) - bw.cur == a + b);  // other cell untouched
    }
    CHECK(L.current(R, G) == bg.cur);            // z freed
    CHECK(L.peak(R, G) - bg.cur == c);           // but its peak is remembered
    x.reset(10, R, W);                           // release 1000 floats, then hold 10
    CHECK(L.current(R, W) - bw.cur == 10 * sizeof(float) + b);
    CHECK(L.peak(R, W) - bw.cur == a + b);
    // The buffers are zero-filled.
    bool zero = true;
    for (std::size_t i = 0; i < y.size(); i++) zero = zero && y[i] == 0.0;
    CHECK(zero);
  }
  CHECK(L.current(R, W) == bw.cur);
  CHECK(L.current(R, G) == bg.cur);
  CHECK(L.current_total() == bw.cur_total);
  CHECK(L.peak(R, W) - bw.cur == a + b);

  // reset_peaks forgets the phase: peaks drop back to the current values.
  L.reset_peaks();
  CHECK(L.peak(R, W) == bw.cur);
  CHECK(L.peak(R, G) == bg.cur);
  CHECK(L.peak_total() == L.current_total());

  // A zero-element buffer allocates nothing.
  Buffer<float> empty(0, R, W);
  CHECK(empty.data() == nullptr);
  CHECK(L.current(R, W) == bw.cur);
}

TEST_CASE("core/ledger: a large host block starts on a huge page and counts the bytes asked for") {
  Ledger& L = Ledger::global();
  const Role R = Role::reward;
  const Category A = Category::activations;
  Base b(R, A);
  const std::size_t huge = std::size_t(2) << 20;     // x86-64's transparent huge page
  const std::size_t n = 3 * huge / sizeof(float) + 5;  // 6 MiB and 20 bytes: not a whole number of huge pages
  {
    Buffer<float> x(n, R, A);
    CHECK(reinterpret_cast<std::uintptr_t>(x.data()) % huge == 0);
    CHECK(L.current(R, A) - b.cur == n * sizeof(float));  // not the 8 MiB of whole huge pages behind it
  }
  CHECK(L.current(R, A) == b.cur);
  CHECK(L.peak(R, A) - b.cur == n * sizeof(float));
  // Below a huge page: the 64-byte alignment of every block.
  Buffer<float> z(1000, R, A);
  CHECK(reinterpret_cast<std::uintptr_t>(z.data()) % 64 == 0);
}

TEST_CASE("core/ledger: total peak is the simultaneous peak, not the sum of cell peaks") {
  Ledger& L = Ledger::global();
  Base b1(Role::reference, Category::activations), b2(Role::teacher, Category::kv_cache);
  const std::size_t s1 = 4096 * sizeof(float), s2 = 1536 * sizeof(float);
  { Buffer<float> p(4096, Role::reference, Category::activations); }  // held alone, then freed
  { Buffer<float> q(1536, Role::teacher, Category::kv_cache); }       // held alone, then freed
  CHECK(L.peak(Role::reference, Category::activations) - b1.cur == s1);
  CHECK(L.peak(Role::teacher, Category::kv_cache) - b2.cur == s2);
  // Never held together: the total peak rose by the larger one only, while the cell peaks sum to s1 + s2.
  CHECK(L.peak_total() - b1.cur_total == std::max(s1, s2));
  {
    Buffer<float> p(4096, Role::reference, Category::activations);
    Buffer<float> q(1536, Role::teacher, Category::kv_cache);
    CHECK(L.current_total() - b1.cur_total == s1 + s2);
  }
  CHECK(L.peak_total() - b1.cur_total == s1 + s2);  // now they were simultaneous
  CHECK(L.current_total() == b1.cur_total);
}

TEST_CASE("core/ledger: Buffer moves transfer ownership and release exactly once") {
  Ledger& L = Ledger::global();
  const Role R = Role::reward;
  const Category C = Category::rollout;
  Base base(R, C);
  const std::size_t s = 100 * sizeof(float);
  {
    Buffer<float> a(100, R, C);
    float* p = a.data();
    a[7] = 3.5f;
    Buffer<float> b(std::move(a));  // move construction
    CHECK(a.data() == nullptr);
    CHECK(a.size() == 0);
    CHECK(b.data() == p);
    CHECK(b[7] == 3.5f);
    CHECK(L.current(R, C) - base.cur == s);  // still one allocation
    Buffer<float> c(50, R, C);
    c = std::move(b);  // move assignment frees c's old 50 floats
    CHECK(L.current(R, C) - base.cur == s);
    CHECK(c.data() == p);
    CHECK(b.data() == nullptr);
    Buffer<float>& alias = c;
    c = std::move(alias);  // self-move keeps the buffer (guarded in operator=)
    CHECK(c.data() == p);
    CHECK(L.current(R, C) - base.cur == s);
  }
  // Destroying the moved-from a and b released nothing; c released the 100 floats once.
  CHECK(L.current(R, C) == base.cur);
  CHECK(L.peak(R, C) - base.cur == s + 50 * sizeof(float));  // a and c's first 50 floats were held together
}

TEST_CASE("core/ledger: oversized requests are errors that leave the ledger and the buffer consistent") {
  Ledger& L = Ledger::global();
  const Role R = Role::policy;
  const Category C = Category::activations;
  Base base(R, C);
  // Sizes whose byte count would wrap around size_t: refused before anything is allocated (so this test
  // never asks the allocator for an absurd size, which AddressSanitizer would abort on).
  CHECK_THROWS_AS(L.allocate(SIZE_MAX, R, C), tinyds::Error);               // 64-byte rounding would wrap
  CHECK_THROWS_AS(Buffer<float>(SIZE_MAX / sizeof(float) + 2, R, C), tinyds::Error);  // n * 4 would wrap
  CHECK(L.current(R, C) == base.cur);
  CHECK(L.current_total() == base.cur_total);
  {
    Buffer<char> b(10, R, C);
    // reset() releases the old 10 bytes, then allocate() throws: b must be left empty, not dangling
    // (otherwise its destructor would release the old pointer a second time).
    CHECK_THROWS_AS(b.reset(SIZE_MAX - 10, R, C), tinyds::Error);
    CHECK(b.data() == nullptr);
    CHECK(b.size() == 0);
  }
  CHECK(L.current(R, C) == base.cur);
}

TEST_CASE("core/ledger: release of a foreign pointer is an error") {
  int x = 0;
  CHECK_THROWS_AS(Ledger::global().release(&x), tinyds::Error);
  Ledger::global().release(nullptr);  // a no-op
}

TEST_CASE("core/ledger: table lists the roles that held memory, with their categories") {
  Ledger& L = Ledger::global();
  L.reset_peaks();
  // Roles that hold nothing now have a zero peak after the reset; critic is used below, teacher is not.
  bool teacher_idle = true, critic_idle = true;
  for (int c = 0; c < tinyds::kNumCategories; c++) {
    teacher_idle = teacher_idle && L.current(Role::teacher, static_cast<Category>(c)) == 0;
    critic_idle = critic_idle && L.current(Role::critic, static_cast<Category>(c)) == 0;
  }
  REQUIRE(teacher_idle);
  REQUIRE(critic_idle);
  Buffer<float> m(3 * 256, Role::critic, Category::adam_m);  // 3 KiB exactly
  Buffer<float> g(2 * 256, Role::critic, Category::grads);   // 2 KiB exactly
  std::string t = L.table();
  // Header: every category named.
  for (int c = 0; c < tinyds::kNumCategories; c++)
    CHECK_MESSAGE(t.find(tinyds::category_name(static_cast<Category>(c))) != std::string::npos, t);
  // A critic row with 3.0 KiB (adam_m), 2.0 KiB (grads) and 5.0 KiB (row total); no teacher row.
  std::istringstream is(t);
  std::string line, critic;
  while (std::getline(is, line))
    if (line.rfind("critic", 0) == 0) critic = line;
  REQUIRE_MESSAGE(!critic.empty(), t);
  CHECK(critic.find("3.0 KiB") != std::string::npos);
  CHECK(critic.find("2.0 KiB") != std::string::npos);
  CHECK(critic.find("5.0 KiB") != std::string::npos);
  CHECK(critic.find("2.0 KiB") < critic.find("3.0 KiB"));  // grads column comes before adam_m
  CHECK(t.find("teacher") == std::string::npos);
  CHECK(t.find("simultaneous peak") != std::string::npos);
}

TEST_CASE("core/ledger: format_bytes picks the unit by size") {
  CHECK(tinyds::format_bytes(0) == "0 B");
  CHECK(tinyds::format_bytes(1023) == "1023 B");
  CHECK(tinyds::format_bytes(1536) == "1.5 KiB");                 // 1536 / 1024
  CHECK(tinyds::format_bytes(3u << 20) == "3.00 MiB");
  CHECK(tinyds::format_bytes(std::size_t(5) << 30) == "5.00 GiB");
}
