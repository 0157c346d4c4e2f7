// tinyds/model/decode_dense.cpp — MHA / GQA / MQA decoding with a key/value cache (see decode_dense.h).
//
// Shapes: B sequences, T new tokens each (at positions pos..pos+T-1), C width, H query heads, Hkv kv heads,
// D head dim, Tmax cache length; new token t sees n = pos + t + 1 cached rows.
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
  if (d.B <= 0 || d.C <= 0 || d.H <= 0 || d.Hkv <= 0 || d.D <= 0 || d.T <= 0)
    throw_error(where, ": every dim must be positive (B=", d.B, " C=", d.C, " H=", d.H, " Hkv=", d.Hkv, " D=", d.D,
                " T=", d.T, ")");
  if (d.H % d.Hkv != 0) throw_error(where, ": H = ", d.H, " is not a multiple of Hkv = ", d.Hkv);
  if (cache.kind() == KvCacheKind::mla) throw_error(where, ": needs an mha/gqa/mqa kv-cache, got an mla cache");
  const KvCacheDims& c = cache.dims();
  if (c.B < d.B || cache.heads() != d.Hkv || c.D != d.D)
    throw_error(where, ": cache dims (B ", c.B, ", kv heads ", cache.heads(), ", D ", c.D,
                ") do not fit the layer's (B ", d.B, ", Hkv ", d.Hkv, ", D ", d.D, ")");
  cache.check_position(pos, where);
  cache.check_position(pos + d.T - 1, where);  // the last of the T new tokens must fit too
}

template <typename real>
void dense_attention_decode(real* out,      // (B, T, C)
                            const real* x,  // (B, T, C)
                            const DenseAttnParams<real>& p, const DenseAttnDims<real>& d, KvCache<real>& cache,
                            int layer, int pos) {
  check_dense(cache, d, pos);
  const int B = d.B, T = d.T, N = B * T, C = d.C, H = d.H, Hkv = d.Hkv, D = d.D, Tmax = cache.dims().Tmax;
  const int group = H / Hkv;  // query heads per kv head
  const real scale = real(1) / std::sqrt(real(D));
  std::vector<real> q(static_cast<std::size_t>(N) * H * D), k(static_cast<std::size_t>(N) * Hkv * D),
      v(static_cast<std::size_t>(N) * Hkv * D), s(pos + T), o(static_cast<std::size_t>(N) * H * D);

  // q, k, v of the new tokens (the lines of layer_forward for N = B*T rows), RoPE at positions pos + t.
  matmul_forward(q.data(), x, p.wq, N, C, H * D);
  matmul_forward(k.data(), x, p.wk, N, C, Hkv * D);
  matmul_forward(v.data(), x, p.wv, N, C, Hkv * D);
  rope_forward(q.data(), q.data(), B, T, H, D, pos, d.theta);
  rope_forward(k.data(), k.data(), B, T, Hkv, D, pos, d.theta);
  // Append to the cache: row pos + t of each sequence holds Hkv keys and Hkv values (2*Hkv*D values per token).
  const long row = static_cast<long>(Hkv) * D;  // one cached position of one sequence
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const long src = (static_cast<long>(b) * T + t) * row, at = (static_cast<long>(b) * Tmax + pos + t) * row;
      std::copy(k.begin() + src, k.begin() + src + row, cache.k(layer) + at);
      std::copy(v.begin() + src, v.begin() + src + row, cache.v(layer) + at);
    }

  for (int b = 0; b < B; b++) {
    const real* K = cache.k(layer) + static_cast<long>(b) * Tmax * row;  // (pos + T, Hkv, D) of this sequence
    const real* V = cache.v(layer) + static_cast<long>(b) * Tmax * row;
    for (int t = 0; t < T; t++) {
      const int n = pos + t + 1;  // new token t sees rows 0..pos+t (causal)
      const long r = static_cast<long>(b) * T + t;
      for (int h = 0; h < H; h++) {
        const int g = h / group;  // the kv head this query head shares with its group
        const real* qh = q.data() + (r * H + h) * D;
        decode::dots(s.data(), qh, K + static_cast<long>(g) * D, row, n, D);  // s[j] = q . k[j, g]
        decode::softmax_scaled(s.data(), n, scale);
        decode::weighted_sum(o.data() + (r * H + h) * D, s.data(), V + static_cast<long>(g) * D, row, n, D);
      }
    }
  }
  matmul_forward(out, o.data(), p.wo, N, H * D, C);
}

template void dense_attention_decode<float>(float*, const float*, const DenseAttnParams<float>&,
                                            const DenseAttnDims<float>&, KvCache<float>&, int, int);
template void dense_attention_decode<double>(double*, const double*, const DenseAttnParams<double>&,
                                             const DenseAttnDims<double>&, KvCache<double>&, int, int);

}  // namespace tinyds
