// tests/core/ledger_device_test.cpp — device buffers (Place::device) in the memory ledger: counted in their own
// cells and totals, never in the host's; zero-filled like host buffers; released through cudaFree. Under the CPU
// emulation of CUDA (the kernel library tinyds_tests links) cudaMalloc'd memory has guard bytes, so a write past
// the end would also be reported there. Expected bytes are the sizes allocated here; no tolerance.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "kernels/device.cuh"
#include "tinyds/core/ledger.h"

using tinyds::Buffer;
using tinyds::Category;
using tinyds::Ledger;
using tinyds::Place;
using tinyds::Role;

TEST_CASE("core/ledger: device buffers are counted apart from host buffers and start zero-filled") {
  Ledger& L = Ledger::global();
  L.reset_peaks();
  const std::size_t host_cur = L.current(Role::teacher, Category::kv_cache, Place::host);
  const std::size_t dev_cur = L.current(Role::teacher, Category::kv_cache, Place::device);
  const std::size_t host_total = L.current_total(Place::host), dev_total = L.current_total(Place::device);
  {
    Buffer<float> d(1000, Role::teacher, Category::kv_cache, Place::device);
    CHECK(d.place() == Place::device);
    CHECK(L.current(Role::teacher, Category::kv_cache, Place::device) == dev_cur + 4000);
    CHECK(L.current(Role::teacher, Category::kv_cache, Place::host) == host_cur);  // not counted as host memory
    CHECK(L.current_total(Place::device) == dev_total + 4000);
    CHECK(L.current_total(Place::host) == host_total);
    // Zero-filled (the emulation fills fresh cudaMalloc memory with 0xFF: the ledger's memset is what zeroes it).
    std::vector<float> h(1000, -1.0f);
    tinyds::cuda::copy_to_host(h.data(), d.data(), 1000 * sizeof(float));
    for (float x : h) REQUIRE(x == 0.0f);
    const std::string t = L.table(Place::device);
    CHECK_MESSAGE(t.find("teacher") != std::string::npos, t);
    CHECK_MESSAGE(t.find("device memory") != std::string::npos, t);
    CHECK(L.table(Place::host).find("device memory") == std::string::npos);
    // A move keeps the place.
    Buffer<float> moved(std::move(d));
    CHECK(moved.place() == Place::device);
    CHECK(L.current_total(Place::device) == dev_total + 4000);
  }
  CHECK(L.current(Role::teacher, Category::kv_cache, Place::device) == dev_cur);  // released
  CHECK(L.peak(Role::teacher, Category::kv_cache, Place::device) >= dev_cur + 4000);
  CHECK(L.current_total(Place::device) == dev_total);
}
