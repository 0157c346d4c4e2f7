// tinyds/model/kv_cache.h — the key/value cache of incremental decoding, and what it costs per token.
//
// Shapes: n_layer layers, B sequences decoded together, Tmax cached positions, H query heads, Hkv key/value
// heads, D head dim, L MLA latent rank, R MLA rope dim.
//
// What one token costs per layer (DeepSeek-V2 Table 1; DESIGN section 4.1), in elements:
//   MHA  2*H*D        a key and a value for every head
//   GQA  2*n_kv*D     one key/value pair per group of H/n_kv query heads
//   MQA  2*D          one key/value pair shared by all heads
//   MLA  L + R        the normed latent c_KV and the one rotated rope key k_R; keys and values are rebuilt from them
// e.g. DeepSeek-V3 (H 128, D 128, L 512, R 64): 32768 (MHA) vs 576 (MLA) elements per token per layer, -98.2%.
//
// Layout: ONE ledgered allocation (Category::kv_cache) for all layers; layer l holds two tensors back to back:
//   dense kinds: k (B, Tmax, Hkv, D) then v (B, Tmax, Hkv, D)     (k after RoPE, as the attention reads it)
//   MLA:         ckv (B, Tmax, L) then kr (B, Tmax, R)             (c_KV after kv_norm, k_R after RoPE)
// The cache does not track how many positions are filled: a decode step at position p writes row p and reads
// rows 0..p, so the caller decodes positions in order from 0.
#pragma once
#include <cstddef>

#include "tinyds/core/ledger.h"

namespace tinyds {

enum class KvCacheKind { mha, gqa, mqa, mla };
const char* kv_cache_kind_name(KvCacheKind k);

struct KvCacheDims {
  int n_layer = 1;    // layers, e.g. 4
  int B = 1;          // sequences decoded together, e.g. 64
  int Tmax = 1;       // positions the cache holds, e.g. 256
  int H = 1;          // query heads, e.g. 8
  int n_kv_head = 1;  // kv heads of GQA, e.g. 2 (MHA always uses H, MQA always 1)
  int D = 1;          // head dim of the dense kinds, e.g. 32
  int L = 0;          // MLA kv latent rank, e.g. 64
  int R = 0;          // MLA rope dim, e.g. 16
};

// Key/value heads the kind caches: H (mha), n_kv_head (gqa), 1 (mqa); 0 for mla (it caches no per-head keys).
int kv_cache_heads(KvCacheKind kind, const KvCacheDims& d);
// Elements cached per token per layer (table above). Validates the dims the kind uses.
std::size_t kv_cache_elems_per_token_per_layer(KvCacheKind kind, const KvCacheDims& d);
// Bytes per token per layer in fp32: 4*(L+R) MLA, 4*2*H*D MHA, 4*2*n_kv*D GQA, 4*2*D MQA.
std::size_t kv_cache_bytes_per_token_per_layer(KvCacheKind kind, const KvCacheDims& d);

template <typename real>
class KvCache {
 public:
  // Allocates n_layer * B * Tmax * elems_per_token_per_layer values (zero-filled) in the ledger's kv_cache cell,
  // in host memory or (Place::device, a Decoder of a cuda model) in device memory, where only kernels and the
  // dev:: copies of tinyds/device/memory.h may touch it.
  KvCache(KvCacheKind kind, const KvCacheDims& dims, Role role = Role::policy, Place place = Place::host);

  KvCacheKind kind() const { return kind_; }
  const KvCacheDims& dims() const { return dims_; }
  int heads() const { return kv_cache_heads(kind_, dims_); }  // Hkv of the dense kinds
  std::size_t numel() const { return buf_.size(); }
  std::size_t bytes() const { return buf_.size() * sizeof(real); }
  Place place() const { return buf_.place(); }
  real* data() { return buf_.data(); }

  // Layer views (each throws if the layer is out of range or the kind does not have that tensor).
  real* k(int layer);    // (B, Tmax, Hkv, D)  dense kinds
  real* v(int layer);    // (B, Tmax, Hkv, D)  dense kinds
  real* ckv(int layer);  // (B, Tmax, L)       mla
  real* kr(int layer);   // (B, Tmax, R)       mla

  // Prefill: writes positions pos0..pos0+T-1 of every sequence of one layer from a full forward's activations,
  // first (B, T, w1) into k / ckv and second (B, T, w2) into v / kr, where w1 = w2 = Hkv*D (dense: the block's
  // RoPE'd k and its v) or w1 = L, w2 = R (MLA: MlaActivations::ckv and ::kr). Decoding then continues at pos0+T.
  // first and second are on the current device (tinyds/device/memory.h copies them).
  void write_rows(int layer, const real* first, const real* second, int T, int pos0);

  // Copies positions pos0..pos0+T-1 of sequence src to sequence dst, in every layer and both tensors: sequences
  // that read the same tokens there hold the same rows (Decoder::prefill_shared decodes one and copies). Throws
  // for a sequence outside [0, B) or positions outside [0, Tmax).
  void copy_rows(int src, int dst, int pos0, int T);

  // Throws unless 0 <= pos < Tmax (a decode step at pos would write past the cache).
  void check_position(int pos, const char* where) const;

 private:
  real* part(int layer, bool second, bool want_mla, const char* name);
  KvCacheKind kind_;
  KvCacheDims dims_;
  Buffer<real> buf_;
};

extern template class KvCache<float>;
extern template class KvCache<double>;

}  // namespace tinyds
