// tests/model/kv_cache_test.cpp — kv-cache sizes (DeepSeek-V2 Table 1; DESIGN section 4.1) and the ledger.
//
// Shapes: n_layer layers, B sequences, Tmax positions, H heads, n_kv kv heads, D head dim, L latent rank, R rope dim.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "tinyds/core/ledger.h"
#include "tinyds/model/kv_cache.h"

using namespace tinyds;

namespace {

KvCacheDims small_dims() {
  KvCacheDims d;
  d.n_layer = 1; d.B = 3; d.Tmax = 11; d.H = 4; d.n_kv_head = 2; d.D = 8; d.L = 6; d.R = 4;
  return d;
}

}  // namespace

TEST_CASE("model/kv_cache: bytes per token per layer follow V2 Table 1") {
  // Expected values by hand from the table (fp32 = 4 bytes): H 4, n_kv 2, D 8, L 6, R 4.
  const KvCacheDims d = small_dims();
  CHECK(kv_cache_bytes_per_token_per_layer(KvCacheKind::mha, d) == 4 * 2 * 4 * 8);  // 4*2*H*D = 256
  CHECK(kv_cache_bytes_per_token_per_layer(KvCacheKind::gqa, d) == 4 * 2 * 2 * 8);  // 4*2*n_kv*D = 128
  CHECK(kv_cache_bytes_per_token_per_layer(KvCacheKind::mqa, d) == 4 * 2 * 8);      // 4*2*D = 64
  CHECK(kv_cache_bytes_per_token_per_layer(KvCacheKind::mla, d) == 4 * (6 + 4));    // 4*(L+R) = 40

  // DeepSeek-V3 (H 128, D 128, L 512, R 64): DESIGN 4.1 quotes 576 vs 32768 elements, a 98.2% reduction.
  KvCacheDims v3;
  v3.H = 128; v3.D = 128; v3.L = 512; v3.R = 64;
  const double mla = double(kv_cache_elems_per_token_per_layer(KvCacheKind::mla, v3));
  const double mha = double(kv_cache_elems_per_token_per_layer(KvCacheKind::mha, v3));
  CHECK(mla == 576);
  CHECK(mha == 32768);
  CHECK(std::round(1000 * (1 - mla / mha)) == 982);  // 98.2%, to the quoted digit

  KvCacheDims bad = d;
  bad.n_kv_head = 3;  // does not divide H = 4
  CHECK_THROWS_WITH_AS(kv_cache_bytes_per_token_per_layer(KvCacheKind::gqa, bad), doctest::Contains("n_kv_head = 3"),
                       Error);
  bad = d;
  bad.L = 0;
  CHECK_THROWS_WITH_AS(kv_cache_bytes_per_token_per_layer(KvCacheKind::mla, bad),
                       doctest::Contains("L (kv latent rank)"), Error);
}

TEST_CASE("model/kv_cache: ledger bytes equal bytes per token per layer * Tmax * B * n_layer, exactly") {
  Ledger& ledger = Ledger::global();
  for (int n_layer : {1, 3}) {
    for (KvCacheKind kind : {KvCacheKind::mha, KvCacheKind::gqa, KvCacheKind::mqa, KvCacheKind::mla}) {
      KvCacheDims d = small_dims();
      d.n_layer = n_layer;
      const std::size_t before = ledger.current(Role::reference, Category::kv_cache);
      const std::size_t expected = kv_cache_bytes_per_token_per_layer(kind, d) * d.Tmax * d.B * n_layer;
      {
        KvCache<float> cache(kind, d, Role::reference);
        INFO(std::string(kv_cache_kind_name(kind)), ", ", n_layer, " layers");
        CHECK(ledger.current(Role::reference, Category::kv_cache) - before == expected);
        CHECK(cache.bytes() == expected);
      }
      CHECK(ledger.current(Role::reference, Category::kv_cache) == before);  // released with the cache
    }
  }
}

TEST_CASE("model/kv_cache: layer views tile the allocation without overlap") {
  KvCacheDims d = small_dims();
  d.n_layer = 3;
  const std::size_t rows = static_cast<std::size_t>(d.B) * d.Tmax;
  KvCache<float> gqa(KvCacheKind::gqa, d), mla(KvCacheKind::mla, d);
  for (int l = 0; l < d.n_layer; l++) {
    // gqa: k (B, Tmax, 2, 8) then v of the same size, layer after layer
    CHECK(gqa.k(l) == gqa.data() + l * rows * 2 * 2 * 8);
    CHECK(gqa.v(l) == gqa.k(l) + rows * 2 * 8);
    // mla: ckv (B, Tmax, L) then kr (B, Tmax, R)
    CHECK(mla.ckv(l) == mla.data() + l * rows * (6 + 4));
    CHECK(mla.kr(l) == mla.ckv(l) + rows * 6);
  }
  CHECK(gqa.v(2) + rows * 2 * 8 == gqa.data() + gqa.numel());  // the last view ends at the end of the buffer
  CHECK(mla.kr(2) + rows * 4 == mla.data() + mla.numel());
  CHECK_THROWS_WITH_AS(mla.k(0), doctest::Contains("no 'k' tensor"), Error);
  CHECK_THROWS_WITH_AS(gqa.ckv(0), doctest::Contains("no 'ckv' tensor"), Error);
  CHECK_THROWS_WITH_AS(gqa.k(3), doctest::Contains("layer 3"), Error);
}
