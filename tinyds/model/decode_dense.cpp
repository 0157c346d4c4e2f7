// tinyds/model/decode_dense.cpp — MHA / GQA / MQA decoding with a key/value cache (see decode_dense.h).
//
// Shapes: B sequences (one new token each, at position pos), C width, H query heads, Hkv kv heads, D head dim,
// Tmax cache length, n = pos + 1 cached rows visible.
#include "tinyds/model/decode_dense.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/model/decode_common.h"
#include "tinyds/ops/matmul.h"
#include "tinyds/ops/rope.h"

namespace tinyds {

template <typename real>
static void check_dense(const KvCache<real>& cache, const DenseAttnDims<real>& d, int pos) {
  const char* where = "dense_attention_decode";
  if (d.B <= 0 || d.C <= 0 || d.H <= 0 || d.Hkv <= 0 || d.D <= 0)
    throw_error(where, ": every dim must be positive (B=", d.B, " C=", d.C, " H=", d.H, " Hkv=", d.Hkv, " D=", d.D,
                ")");
  if (d.H % d.Hkv != 0) throw_error(where, ": H = ", d.H, " is not a multiple of Hkv = ", d.Hkv);
  if (cache.kind() == KvCacheKind::mla) throw_error(where, ": needs an mha/gqa/mqa kv-cache, got an mla cache");
  const KvCacheDims& c = cache.dims();
  if (c.B != d.B || cache.heads() != d.Hkv || c.D != d.D)
    throw_error(where, ": cache dims (B ", c.B, ", kv heads ", cache.heads(), ", D ", c.D,
                ") differ from the layer's (B ", d.B, ", Hkv ", d.Hkv, ", D ", d.D, ")");
  cache.check_position(pos, where);
}

template <typename real>
void dense_attention_decode(real* out,      // (B, C)
                            const real* x,  // (B, C)
                            const DenseAttnParams<real>& p, const DenseAttnDims<real>& d, KvCache<real>& cache,
                            int layer, int pos) {
  check_dense(cache, d, pos);
  const int B = d.B, C = d.C, H = d.H, Hkv = d.Hkv, D = d.D, Tmax = cache.dims().Tmax, n = pos + 1;
  const int group = H / Hkv;  // query heads per kv head
  const real scale = real(1) / std::sqrt(real(D));
  const real* none = nullptr;
  std::vector<real> q(static_cast<std::size_t>(B) * H * D), k(static_cast<std::size_t>(B) * Hkv * D),
      v(static_cast<std::size_t>(B) * Hkv * D), s(n), o(static_cast<std::size_t>(B) * H * D);

  // q, k, v of the new token (the lines of layer_forward for one row), RoPE at position pos.
  matmul_forward(q.data(), x, p.wq, none, B, C, H * D);
  matmul_forward(k.data(), x, p.wk, none, B, C, Hkv * D);
  matmul_forward(v.data(), x, p.wv, none, B, C, Hkv * D);
  rope_forward(q.data(), q.data(), B, 1, H, D, pos, d.theta);
  rope_forward(k.data(), k.data(), B, 1, Hkv, D, pos, d.theta);
  // Append to the cache: row pos of each sequence holds Hkv keys and Hkv values (2*Hkv*D values per token).
  const long row = static_cast<long>(Hkv) * D;  // one cached position of one sequence
  for (int b = 0; b < B; b++) {
    const long at = (static_cast<long>(b) * Tmax + pos) * row;
    std::copy(k.begin() + b * row, k.begin() + (b + 1) * row, cache.k(layer) + at);
    std::copy(v.begin() + b * row, v.begin() + (b + 1) * row, cache.v(layer) + at);
  }

  for (int b = 0; b < B; b++) {
    const real* K = cache.k(layer) + static_cast<long>(b) * Tmax * row;  // (n, Hkv, D) of this sequence
    const real* V = cache.v(layer) + static_cast<long>(b) * Tmax * row;
    for (int h = 0; h < H; h++) {
      const int g = h / group;  // the kv head this query head shares with its group
      const real* qh = q.data() + (static_cast<long>(b) * H + h) * D;
      for (int j = 0; j < n; j++) s[j] = decode::dot(qh, K + j * row + static_cast<long>(g) * D, D);
      decode::softmax_scaled(s.data(), n, scale);
      decode::weighted_sum(o.data() + (static_cast<long>(b) * H + h) * D, s.data(), V + static_cast<long>(g) * D,
                           row, n, D);
    }
  }
  matmul_forward(out, o.data(), p.wo, none, B, H * D, C);
}

template void dense_attention_decode<float>(float*, const float*, const DenseAttnParams<float>&,
                                            const DenseAttnDims<float>&, KvCache<float>&, int, int);
template void dense_attention_decode<double>(double*, const double*, const DenseAttnParams<double>&,
                                             const DenseAttnDims<double>&, KvCache<double>&, int, int);

}  // namespace tinyds
