// tinyds/model/kv_cache.cpp — see kv_cache.h.
#include "tinyds/model/kv_cache.h"

#include <algorithm>

#include "tinyds/core/error.h"
#include "tinyds/device/memory.h"

namespace tinyds {

const char* kv_cache_kind_name(KvCacheKind k) {
  switch (k) {
    case KvCacheKind::mha: return "mha";
    case KvCacheKind::gqa: return "gqa";
    case KvCacheKind::mqa: return "mqa";
    case KvCacheKind::mla: return "mla";
  }
  return "?";
}

namespace {

void check_positive(int value, const char* field, KvCacheKind kind) {
  if (value <= 0) throw_error("kv-cache (", kv_cache_kind_name(kind), "): ", field, " = ", value, " must be positive");
}

}  // namespace

int kv_cache_heads(KvCacheKind kind, const KvCacheDims& d) {
  switch (kind) {
    case KvCacheKind::mha: return d.H;
    case KvCacheKind::gqa: return d.n_kv_head;
    case KvCacheKind::mqa: return 1;
    case KvCacheKind::mla: return 0;
  }
  return 0;
}

std::size_t kv_cache_elems_per_token_per_layer(KvCacheKind kind, const KvCacheDims& d) {
  if (kind == KvCacheKind::mla) {
    check_positive(d.L, "L (kv latent rank)", kind);
    check_positive(d.R, "R (rope dim)", kind);
    return static_cast<std::size_t>(d.L) + d.R;  // c_KV and the shared k_R: no per-head term at all
  }
  check_positive(d.H, "H (query heads)", kind);
  check_positive(d.D, "D (head dim)", kind);
  if (kind == KvCacheKind::gqa) {
    check_positive(d.n_kv_head, "n_kv_head", kind);
    if (d.n_kv_head > d.H || d.H % d.n_kv_head != 0)
      throw_error("kv-cache (gqa): n_kv_head = ", d.n_kv_head, " must divide H = ", d.H);
  }
  return 2 * static_cast<std::size_t>(kv_cache_heads(kind, d)) * d.D;  // a key and a value per kv head
}

std::size_t kv_cache_bytes_per_token_per_layer(KvCacheKind kind, const KvCacheDims& d) {
  return sizeof(float) * kv_cache_elems_per_token_per_layer(kind, d);
}

template <typename real>
KvCache<real>::KvCache(KvCacheKind kind, const KvCacheDims& dims, Role role, Place place)
    : kind_(kind), dims_(dims) {
  check_positive(dims.n_layer, "n_layer", kind);
  check_positive(dims.B, "B", kind);
  check_positive(dims.Tmax, "Tmax", kind);
  const std::size_t per_token = kv_cache_elems_per_token_per_layer(kind, dims);
  buf_.reset(per_token * dims.Tmax * dims.B * dims.n_layer, role, Category::kv_cache, place);
}

// Layer l starts at l * B*Tmax*per_token; its second tensor (v or kr) follows the first (k or ckv).
template <typename real>
real* KvCache<real>::part(int layer, bool second, bool want_mla, const char* name) {
  if ((kind_ == KvCacheKind::mla) != want_mla)
    throw_error("kv-cache: a ", kv_cache_kind_name(kind_), " cache has no '", name, "' tensor");
  if (layer < 0 || layer >= dims_.n_layer)
    throw_error("kv-cache: layer ", layer, " is outside [0, ", dims_.n_layer, ")");
  const std::size_t rows = static_cast<std::size_t>(dims_.B) * dims_.Tmax;
  const std::size_t per_token = kv_cache_elems_per_token_per_layer(kind_, dims_);
  // width of the first tensor per row: L for mla, Hkv*D (half of per_token) for the dense kinds
  const std::size_t first = want_mla ? static_cast<std::size_t>(dims_.L) : per_token / 2;
  return buf_.data() + layer * rows * per_token + (second ? rows * first : 0);
}

template <typename real> real* KvCache<real>::k(int l) { return part(l, false, false, "k"); }
template <typename real> real* KvCache<real>::v(int l) { return part(l, true, false, "v"); }
template <typename real> real* KvCache<real>::ckv(int l) { return part(l, false, true, "ckv"); }
template <typename real> real* KvCache<real>::kr(int l) { return part(l, true, true, "kr"); }

template <typename real>
void KvCache<real>::write_rows(int layer, const real* first, const real* second, int T, int pos0) {
  if (T < 0 || pos0 < 0 || pos0 + T > dims_.Tmax)
    throw_error("kv-cache prefill: positions [", pos0, ", ", pos0 + T, ") are outside [0, Tmax = ", dims_.Tmax, ")");
  const bool is_mla = kind_ == KvCacheKind::mla;
  real* dst1 = is_mla ? ckv(layer) : k(layer);
  real* dst2 = is_mla ? kr(layer) : v(layer);
  const std::size_t per_token = kv_cache_elems_per_token_per_layer(kind_, dims_);
  const std::size_t w1 = is_mla ? static_cast<std::size_t>(dims_.L) : per_token / 2, w2 = per_token - w1;
  for (int b = 0; b < dims_.B; b++) {
    const std::size_t src_row = static_cast<std::size_t>(b) * T;                // (b, 0) of the (B, T, w) source
    const std::size_t dst_row = static_cast<std::size_t>(b) * dims_.Tmax + pos0;  // (b, pos0) of the cache
    dev::copy(dst1 + dst_row * w1, first + src_row * w1, T * w1);
    dev::copy(dst2 + dst_row * w2, second + src_row * w2, T * w2);
  }
}

template <typename real>
void KvCache<real>::copy_rows(int src, int dst, int pos0, int T) {
  if (src < 0 || src >= dims_.B || dst < 0 || dst >= dims_.B)
    throw_error("kv-cache copy: sequences ", src, " -> ", dst, " must be in [0, B = ", dims_.B, ")");
  if (T < 0 || pos0 < 0 || pos0 + T > dims_.Tmax)
    throw_error("kv-cache copy: positions [", pos0, ", ", pos0 + T, ") are outside [0, Tmax = ", dims_.Tmax, ")");
  if (src == dst) return;
  const bool is_mla = kind_ == KvCacheKind::mla;
  const std::size_t per_token = kv_cache_elems_per_token_per_layer(kind_, dims_);
  const std::size_t w1 = is_mla ? static_cast<std::size_t>(dims_.L) : per_token / 2, w2 = per_token - w1;
  const std::size_t from = static_cast<std::size_t>(src) * dims_.Tmax + pos0;  // row (src, pos0)
  const std::size_t to = static_cast<std::size_t>(dst) * dims_.Tmax + pos0;    // row (dst, pos0)
  for (int l = 0; l < dims_.n_layer; l++) {
    real* first = is_mla ? ckv(l) : k(l);
    real* second = is_mla ? kr(l) : v(l);
    dev::copy(first + to * w1, first + from * w1, T * w1);
    dev::copy(second + to * w2, second + from * w2, T * w2);
  }
}

template <typename real>
void KvCache<real>::check_position(int pos, const char* where) const {
  if (pos < 0 || pos >= dims_.Tmax)
    throw_error(where, ": decode position ", pos, " is outside the kv-cache's [0, Tmax = ", dims_.Tmax,
                "); allocate a longer cache");
}

template class KvCache<float>;
template class KvCache<double>;

}  // namespace tinyds
