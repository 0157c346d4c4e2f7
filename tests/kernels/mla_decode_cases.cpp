// tests/kernels/mla_decode_cases.cpp — kernel table rows for kernels/mla_decode.cu against the CPU decoders of
// tinyds/model/mla_decode.h (absorbed and naive).
//
// Shapes: B sequences, T new tokens each at positions pos..pos+T-1, C width, H heads, D head dim, R rope dim,
// L latent rank, Q query latent rank, Tmax cache length.
// Each row: a cache whose rows 0..pos-1 hold random latents; the CPU decoder runs one step on x (B, T, C), which
// writes rows pos..pos+T-1 and returns out (B, T, C). The kernel side projects q from x with the same public ops
// the decoder uses (matmul, rmsnorm, rope), runs the kernel on the CPU-filled cache, and applies wo with
// matmul_forward; its out must equal the CPU decoder's. A kernel reading a row past pos + t (no causal mask), the
// wrong head's W_UK / W_UV, or a stale row misses by O(1).
#include <cmath>

#include "kernels/mla_decode.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/model/kv_cache.h"
#include "tinyds/model/mla.h"
#include "tinyds/model/mla_decode.h"
#include "tinyds/ops/matmul.h"
#include "tinyds/ops/rmsnorm.h"
#include "tinyds/ops/rope.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;

struct MlaShape {
  int B, T, C, H, D, R, L, Q, Tmax, pos;
  std::string name() const {
    return "B=" + std::to_string(B) + " T=" + std::to_string(T) + " H=" + std::to_string(H) + " D=" +
           std::to_string(D) + " R=" + std::to_string(R) + " L=" + std::to_string(L) + " pos=" + std::to_string(pos);
  }
};

// Random weights with each projection's output O(1): U(-a, a) with a = sqrt(3 / fan_in) has variance 1/fan_in.
struct MlaWeights {
  std::vector<float> wq_a, q_norm, wq_b, wkv_a, kv_norm, wkv_b, wo;
  tinyds::MlaParams<float> view() {
    return {wq_a.data(), q_norm.data(), wq_b.data(), wkv_a.data(), kv_norm.data(), wkv_b.data(), wo.data()};
  }
};
std::vector<float> linear(int out, int in, uint64_t seed) {
  const float a = std::sqrt(3.0f / static_cast<float>(in));
  return random_floats(static_cast<size_t>(out) * in, seed, -a, a);
}
MlaWeights random_weights(const MlaShape& s) {
  MlaWeights w;
  w.wq_a = linear(s.Q, s.C, 81);
  w.q_norm = random_floats(s.Q, 82, 0.5f, 1.5f);  // gains away from 1: a missing gain shows
  w.wq_b = linear(s.H * (s.D + s.R), s.Q, 83);
  w.wkv_a = linear(s.L + s.R, s.C, 84);
  w.kv_norm = random_floats(s.L, 85, 0.5f, 1.5f);
  w.wkv_b = linear(s.H * 2 * s.D, s.L, 86);
  w.wo = linear(s.C, s.H * s.D, 87);
  return w;
}

// q (B, T, H, D+R) of the new tokens: the query lines of the decoder's projection (mla_decode.cpp), from the ops.
std::vector<float> project_q(const std::vector<float>& x, MlaWeights& w, const MlaShape& s) {
  const int N = s.B * s.T;
  std::vector<float> cq_pre(static_cast<size_t>(N) * s.Q), cq(cq_pre.size()), rstd(N);
  std::vector<float> q(static_cast<size_t>(N) * s.H * (s.D + s.R)), qr(static_cast<size_t>(N) * s.H * s.R);
  tinyds::matmul_forward(cq_pre.data(), x.data(), w.wq_a.data(), N, s.C, s.Q);
  tinyds::rmsnorm_forward(cq.data(), rstd.data(), cq_pre.data(), w.q_norm.data(), N, s.Q, 1e-5f);
  tinyds::matmul_forward(q.data(), cq.data(), w.wq_b.data(), N, s.Q, s.H * (s.D + s.R));
  tinyds::mla_gather_rope_part(qr.data(), q.data(), N, s.H, s.D, s.R);
  tinyds::rope_forward(qr.data(), qr.data(), s.B, s.T, s.H, s.R, s.pos, 10000.0f);  // row (b, t) at pos + t
  tinyds::mla_scatter_rope_part(q.data(), qr.data(), N, s.H, s.D, s.R);
  return q;
}

// naive = false: reference mla_decode_absorbed; true: mla_decode_naive.
CaseResult mla_decode_case(const MlaShape& s, bool naive, int version) {
  MlaWeights w = random_weights(s);
  const tinyds::MlaDims<float> d{s.B, s.T, s.C, s.H, s.D, s.R, s.L, s.Q, 1e-5f, 10000.0f, 0};
  tinyds::KvCacheDims cd;
  cd.n_layer = 1; cd.B = s.B; cd.Tmax = s.Tmax; cd.H = s.H; cd.L = s.L; cd.R = s.R;
  tinyds::KvCache<float> cache(tinyds::KvCacheKind::mla, cd);
  // Rows 0..pos-1: random latents (RMS-normed c_KV and rotated k_R are O(1), so are these).
  const std::vector<float> ckv0 = random_floats(static_cast<size_t>(s.B) * s.Tmax * s.L, 88);
  const std::vector<float> kr0 = random_floats(static_cast<size_t>(s.B) * s.Tmax * s.R, 89);
  for (int b = 0; b < s.B; b++)
    for (int j = 0; j < s.pos; j++) {
      const long row = static_cast<long>(b) * s.Tmax + j;
      std::copy(ckv0.begin() + row * s.L, ckv0.begin() + (row + 1) * s.L, cache.ckv(0) + row * s.L);
      std::copy(kr0.begin() + row * s.R, kr0.begin() + (row + 1) * s.R, cache.kr(0) + row * s.R);
    }
  const std::vector<float> x = random_floats(static_cast<size_t>(s.B) * s.T * s.C, 90);
  std::vector<float> ref(x.size());
  tinyds::MlaParams<float> p = w.view();
  if (naive)
    tinyds::mla_decode_naive(ref.data(), x.data(), p, d, cache, 0, s.pos);
  else
    tinyds::mla_decode_absorbed(ref.data(), x.data(), p, d, cache, 0, s.pos);

  // Kernel: q from the ops, the cache as the CPU decoder left it (rows 0..pos+T-1 filled), then out = o wo^T.
  const std::vector<float> q = project_q(x, w, s);
  const size_t n_ckv = static_cast<size_t>(s.B) * s.Tmax * s.L, n_kr = static_cast<size_t>(s.B) * s.Tmax * s.R;
  DeviceBuffer<float> d_q(q), d_wkv_b(w.wkv_b), d_o(static_cast<size_t>(s.B) * s.T * s.H * s.D);
  DeviceBuffer<float> d_ckv(std::vector<float>(cache.ckv(0), cache.ckv(0) + n_ckv));
  DeviceBuffer<float> d_kr(std::vector<float>(cache.kr(0), cache.kr(0) + n_kr));
  tinyds::cuda::mla_decode_attention_absorbed(d_o.get(), d_q.get(), d_ckv.get(), d_kr.get(), d_wkv_b.get(), s.B,
                                              s.T, s.H, s.D, s.R, s.L, s.Tmax, s.pos, version);
  const std::vector<float> o = d_o.download();
  std::vector<float> got(x.size());
  tinyds::matmul_forward(got.data(), o.data(), w.wo.data(), s.B * s.T,
                         s.H * s.D, s.C);
  return {{{"out", got, ref}}};
}

}  // namespace

TINYDS_KERNEL_CASES(mla_decode) {
  // B = 0 is not a row: the CPU decoder rejects it (MLA dims must be positive); the launcher returns at once.
  const std::vector<MlaShape> shapes = {
      {1, 1, 16, 1, 4, 2, 6, 8, 8, 0},         // one sequence, one head, the first token (attends to itself)
      {2, 1, 16, 2, 4, 4, 6, 8, 16, 7},        // plain decoding at position 7
      {3, 2, 24, 4, 8, 4, 33, 12, 80, 65},     // two new tokens (speculative verification), L = 33
      {2, 3, 32, 2, 16, 8, 65, 16, 300, 257},  // 258..260 rows: more rows than the block's 128 threads
  };
  // Against the absorbed CPU path: the kernel does each sum (q_lat, scores, o_lat, o) in the CPU's order; only
  // the softmax denominator is summed in another order (in double, then rounded to float as on the CPU), and the
  // wo GEMM is the same CPU call (observed <= 1.2e-7 on O(1) outputs under the emulation); version 2 also sums
  // the scores in another order (a few ulps of O(1) scores); on a GPU, expf and FMAs add a few ulps per sum
  // (~1e-6). atol 1e-5, rtol 1e-5.
  // Against the naive path: q.(W_UK c) vs (W_UK^T q).c and W_UV (sum p c) vs sum p (W_UV c) are reassociated fp32
  // sums of L*D terms (the decoder test observed <= 3.6e-7 on O(1) outputs): the same atol 1e-5, rtol 1e-5.
  for (int version : {1, 2})
    for (const MlaShape& s : shapes) {
      add({"mla_decode_attention_absorbed", version, s.name() + " ref=absorbed", 1e-5, 1e-5,
           "same sums in CPU order except the softmax denominator (v2: the scores too); GPU expf/FMA ~1e-6",
           [s, version] { return mla_decode_case(s, false, version); }});
      add({"mla_decode_attention_absorbed", version, s.name() + " ref=naive", 1e-5, 1e-5,
           "fp32 sums reassociated by the absorption (observed <= 1.4e-7 here, 3.6e-7 in the decoder test)",
           [s, version] { return mla_decode_case(s, true, version); }});
    }
}
