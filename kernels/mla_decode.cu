// kernels/mla_decode.cu — MLA's absorbed decode attention over the latent kv-cache (DeepSeek-V2 arXiv 2405.04434
// §2.1; DeepSeek-V3 inference/model.py "absorb"; DESIGN 4.1).
//
// Shapes: B sequences, T new tokens each (positions pos..pos+T-1), H heads, D head dim, R rope dim, L latent rank,
// Tmax cache length; token t sees n = pos + t + 1 cached rows.
// CPU reference: the attention loop of mla_decode_absorbed in tinyds/model/mla_decode.cpp (and, equal to it up to
// rounding, mla_decode_naive). Per (b, t, h):
//   q_lat = W_UK[h]^T q_C[h]                        (L)   W_UK folded into the query: keys are never rebuilt
//   s_j   = q_lat . c_KV[j] + q_R[h] . k_R[j]             j < n: only the cached L + R values per row are read
//   p     = softmax(s / sqrt(D + R))
//   o_lat = sum_j p_j c_KV[j]                       (L)   W_UV folded into the output: values are never rebuilt
//   o[h]  = W_UV[h] o_lat                           (D)
//
// One block of 128 threads per (h, t, b), the five steps above as five phases separated by barriers, each
// phase's outputs in shared memory (q_lat, the n scores, o_lat). What it teaches: decode attention is a
// matrix-vector problem (one query row), so the parallelism is over heads, sequences and the cached rows j; the
// absorbed form makes every cached row an (L + R)-vector read once for the scores and once for o_lat, instead of
// materialising H*2D values per row as the naive path does. The two versions differ only in the scores phase:
//   1: one thread per cached row, each sum in the CPU's order (every sum then has the CPU's bits except the
//      softmax denominator, a tree reduction in double rounded to float as on the CPU); its reads are uncoalesced.
//   2 (the one the GPU path uses): one warp per cached row, lanes over the row's L + R values (coalesced), a
//      shuffle butterfly for the sum; the scores then differ from the CPU's by rounding.
// A production kernel (FlashMLA) tiles the rows j over several blocks with an online softmax and uses tensor
// cores for the q_lat . c_KV products of many heads at once; that is beyond this reference.
#include "kernels/common.cuh"
#include "kernels/mla_decode.cuh"

#include <cmath>

#include "tinyds/core/error.h"

namespace tinyds::cuda {

namespace {

constexpr int kBlock = 128;  // threads per block (a power of two: the tree reductions halve it)

// Max of v over the block, returned to every thread (all threads must call it). buf: kBlock floats of shared memory.
__device__ float block_max(float* buf, float v) {
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) buf[threadIdx.x] = fmaxf(buf[threadIdx.x], buf[threadIdx.x + stride]);
    __syncthreads();
  }
  const float m = buf[0];
  __syncthreads();  // all have read buf[0] before it is reused
  return m;
}

// Sum of v over the block in double (the CPU sums the softmax denominator in double), returned to every thread.
__device__ double block_sum(double* buf, double v) {
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) buf[threadIdx.x] += buf[threadIdx.x + stride];
    __syncthreads();
  }
  const double s = buf[0];
  __syncthreads();
  return s;
}

// The five phases for one (h, t, b) = (blockIdx.x, .y, .z). Versions 1 and 2 are one kernel: `version` picks phase
// 2's layout at compile time (1: one thread per cached row; 2: one warp per cached row), the rest is shared.
template <int version>
__global__ void mla_decode_attention_absorbed_kernel(float* o,            // (B, T, H, D) out
                                                     const float* q,      // (B, T, H, D+R)
                                                     const float* ckv,    // (B, Tmax, L)
                                                     const float* kr,     // (B, Tmax, R)
                                                     const float* wkv_b,  // (H*2D, L)
                                                     int T, int H, int D, int R, int L, int Tmax, int pos,
                                                     float scale) {
  constexpr bool warp_scores = version == 2;
  DYNAMIC_SHARED(float, smem);            // q_lat (L), o_lat (L), p (pos + T)
  STATIC_SHARED(float, fbuf, [kBlock]);   // block_max's reduction buffer
  STATIC_SHARED(double, dbuf, [kBlock]);  // block_sum's
  float* q_lat = smem;
  float* o_lat = smem + L;
  float* p = smem + 2 * L;
  const int h = blockIdx.x, t = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
  const int n = pos + t + 1;  // rows 0..pos+t: the causal mask is how far each new token reads
  const long row = static_cast<long>(b) * T + t;
  const float* qh = q + (row * H + h) * (D + R);                  // [q_C (D); q_R (R)]
  const float* w_uk = wkv_b + static_cast<long>(h) * 2 * D * L;  // (D, L)
  const float* w_uv = w_uk + static_cast<long>(D) * L;            // (D, L)
  const float* c = ckv + static_cast<long>(b) * Tmax * L;         // (n, L) this sequence's latent rows
  const float* k = kr + static_cast<long>(b) * Tmax * R;          // (n, R) its shared rope keys

  // 1. q_lat[i] = sum_e W_UK[e, i] q_C[e]: consecutive threads read consecutive i of a W_UK row (coalesced)
  for (int i = tid; i < L; i += kBlock) {
    float acc = 0.0f;
    for (int e = 0; e < D; e++) acc += w_uk[static_cast<long>(e) * L + i] * qh[e];
    q_lat[i] = acc;
  }
  __syncthreads();  // q_lat complete before any score uses it

  // 2. scores s_j = q_lat . c_KV[j] + q_R . k_R[j]   (an (L + R)-dot product per cached row)
  float my_max = -INFINITY;
  if (!warp_scores) {
    // One thread per row, summing in the CPU's order. Neighbouring threads read rows L floats apart: on a GPU
    // every load of a warp touches 32 different cache lines (uncoalesced).
    for (int j = tid; j < n; j += kBlock) {
      const float* cj = c + static_cast<long>(j) * L;
      const float* kj = k + static_cast<long>(j) * R;
      float s_c = 0.0f, s_r = 0.0f;
      for (int i = 0; i < L; i++) s_c += q_lat[i] * cj[i];
      for (int i = 0; i < R; i++) s_r += qh[D + i] * kj[i];
      p[j] = s_c + s_r;
      my_max = fmaxf(my_max, scale * p[j]);
    }
  } else {
    // One warp per row: lanes read consecutive values of the row (one cache line per 32 floats: coalesced) and
    // combine their partial sums with a shuffle butterfly. The row loop depends only on the warp, so all 32 lanes
    // reach every shuffle.
    const int lane = tid % 32, warp = tid / 32, n_warps = kBlock / 32;
    for (int j = warp; j < n; j += n_warps) {
      const float* cj = c + static_cast<long>(j) * L;
      const float* kj = k + static_cast<long>(j) * R;
      float part = 0.0f;
      for (int i = lane; i < L; i += 32) part += q_lat[i] * cj[i];
      for (int i = lane; i < R; i += 32) part += qh[D + i] * kj[i];
      for (int mask = 16; mask > 0; mask /= 2) part += __shfl_xor_sync(0xffffffffu, part, mask);
      if (lane == 0) {
        p[j] = part;
        my_max = fmaxf(my_max, scale * part);
      }
    }
  }

  // 3. softmax over j; minus the max: every exponent <= 0, so expf cannot overflow
  const float mx = block_max(fbuf, my_max);  // its barriers also publish p[] written above
  double my_sum = 0.0;
  for (int j = tid; j < n; j += kBlock) {
    p[j] = expf(scale * p[j] - mx);
    my_sum += p[j];
  }
  const double sum = block_sum(dbuf, my_sum);  // its barriers also publish the exponentials
  const float inv = static_cast<float>(1.0 / sum);
  for (int j = tid; j < n; j += kBlock) p[j] *= inv;
  __syncthreads();  // probabilities complete

  // 4. o_lat[i] = sum_j p_j c_KV[j, i]: thread i walks down column i of the cached rows (coalesced across i)
  for (int i = tid; i < L; i += kBlock) {
    float acc = 0.0f;
    for (int j = 0; j < n; j++) acc += p[j] * c[static_cast<long>(j) * L + i];
    o_lat[i] = acc;
  }
  __syncthreads();  // o_lat complete

  // 5. o[e] = W_UV[e, :] . o_lat
  float* oh = o + (row * H + h) * D;
  for (int e = tid; e < D; e += kBlock) {
    const float* w = w_uv + static_cast<long>(e) * L;
    float acc = 0.0f;
    for (int i = 0; i < L; i++) acc += w[i] * o_lat[i];
    oh[e] = acc;
  }
}

}  // namespace

void mla_decode_attention_absorbed(float* o, const float* q, const float* ckv, const float* kr, const float* wkv_b,
                                   int B, int T, int H, int D, int R, int L, int Tmax, int pos, int version) {
  const char* where = "cuda::mla_decode_attention_absorbed";
  if (B < 0 || T < 0 || H < 1 || D < 1 || R < 0 || L < 1)
    throw_error(where, ": need B, T >= 0 and H, D, L >= 1, R >= 0, got B=", B, " T=", T, " H=", H, " D=", D, " R=",
                R, " L=", L);
  if (pos < 0 || pos + T > Tmax)
    throw_error(where, ": rows pos=", pos, "..pos+T-1=", pos + T - 1, " do not fit a cache of Tmax=", Tmax);
  if (version < 0 || version > 2) throw_error(where, ": no kernel version ", version, " (0, 1, 2)");
  const size_t smem = sizeof(float) * (2 * static_cast<size_t>(L) + pos + T);
  if (smem > 48 * 1024)
    throw_error(where, ": L=", L, " and pos+T=", pos + T, " need more than 48 KiB of shared memory");
  if (B == 0 || T == 0) return;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D + R));  // the CPU's real(1) / sqrt(real(D + R))
  launch(version == 1 ? mla_decode_attention_absorbed_kernel<1> : mla_decode_attention_absorbed_kernel<2>,
         dim3(H, T, B), dim3(kBlock), smem, o, q, ckv, kr, wkv_b, T, H, D, R, L, Tmax, pos, scale);
}

}  // namespace tinyds::cuda
