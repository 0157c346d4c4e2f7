// kernels/attention.cu — causal scaled dot-product attention with grouped kv heads (MHA / GQA / MQA) on the GPU.
// CPU reference: tinyds/ops/attention.h (same names, same argument order, device pointers).
//
// Shapes: B batch, T time, H query heads, Hkv kv heads, group = H / Hkv, Dk query/key dim, Dv value dim.
//   q (B, T, H, Dk), k (B, T, Hkv, Dk), v (B, T, Hkv, Dv), att (B, H, T, T), out (B, T, H, Dv)
// Per (b, h), with g = h / group:  S = scale Q K^T;  P = causal row softmax of S (P[t, j] = 0 for j > t);  O = P V
// Gradients: dq, dk, dv WRITTEN (=); a kv head's dk / dv is the sum over the query heads of its group.
//
// Forward versions:
//   1  three kernels, each one line of the formula: scores S into att, softmax of att in place (one warp per row),
//      O = P V (one thread per output element). Simple, and every intermediate is visible in global memory, but S
//      is written and read back twice: for long T the (T, T) traffic dominates.
//   2  one fused flash-style kernel (Dao et al. 2022, FlashAttention Alg. 1, the online softmax of Milakov &
//      Gimelshein 2018): a block takes kFlashRows query rows (one warp each) and walks the key/value rows in tiles of
//      32 through shared memory. Lane j of a warp scores key j of the tile; the warp keeps a running max m and
//      running sum l, and when a tile raises the max, everything accumulated so far is rescaled by exp(m_old - m_new)
//      (the online softmax: the final result equals the two-pass softmax). O never leaves shared memory until it is
//      divided by l at the end, and tiles entirely above the diagonal are never loaded (the causal saving). The op's
//      signature returns att for the backward, so a second sweep writes P = exp(S - m) / l with the final m and l;
//      a GPU path that does not need att would drop that sweep and keep lse = m + log l (B, H, T) instead.
//   Version 0 = 2.
// Backward (one version): the plain backward from the saved probabilities, the CPU's formulas:
//   dV = P^T dO;  dP = dO V^T;  dS = P .* (dP - rowsum(dP .* P));  dQ = scale dS K;  dK = scale dS^T Q
//   Why not the recompute-based flash backward: the op saves att and its backward reads it, so both forward
//   versions feed the same backward, and a flash backward would need lse, which is not among the op's outputs.
//   One block per query row (b, h, t): the dP / dS row lives in shared memory, dq[t] is written directly (the block
//   is its only writer); dk[j] and dv[j] receive contributions from every row t >= j of every head of the group, so
//   they are accumulated with atomicAdd after a memset. Their float sums are therefore added in a varying order
//   (bits vary run to run); the CPU avoids that by giving each thread a whole kv head, which has too little
//   parallelism for a GPU.
#include "kernels/attention.cuh"
#include "kernels/common.cuh"
#include "kernels/reductions.cuh"
#include "tinyds/core/error.h"

namespace tinyds::cuda {

constexpr int kAttBlock = 256;
constexpr int kFlashRows = 8;                  // query rows per block in version 2 (one warp each)
constexpr int kFlashTile = 32;                 // key rows per tile: one per lane
constexpr int kAttBackwardBlock = 128;
constexpr size_t kMaxDefaultSharedBytes = 48 * 1024;  // dynamic shared memory a launch gets without an opt-in

// Element offsets of row (b, t, head) of a (B, T, nh, D) tensor, and of row (b, h, t) of att (B, H, T, T).
__device__ __forceinline__ long row_offset(int b, int t, int head, int T, int nh, int D) {
  return ((static_cast<long>(b) * T + t) * nh + head) * D;
}
__device__ __forceinline__ long att_row(int b, int h, int t, int H, int T) {
  return ((static_cast<long>(b) * H + h) * T + t) * T;
}

// ---- version 1: scores, softmax, weighted sum ---------------------------------------------------------------------

// att[b, h, t, j] = scale q[b, t, h] . k[b, j, g] for j <= t (the upper triangle is left for the softmax to zero).
__global__ void attention_scores_kernel1(float* att, const float* q, const float* k, int B, int T, int H, int Hkv,
                                         int Dk, float scale) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;  // over (B, H, T, T)
  if (i >= static_cast<long>(B) * H * T * T) return;
  const int j = static_cast<int>(i % T), t = static_cast<int>((i / T) % T);
  const int h = static_cast<int>((i / T / T) % H), b = static_cast<int>(i / T / T / H);
  if (j > t) return;  // causal: never computed
  const float* qt = q + row_offset(b, t, h, T, H, Dk);
  const float* kj = k + row_offset(b, j, h / (H / Hkv), T, Hkv, Dk);
  float s = 0.0f;
  for (int c = 0; c < Dk; c++) s += qt[c] * kj[c];
  att[i] = scale * s;
}

// In place on each row of att: softmax over j <= t, 0 for j > t. One warp per row.
__global__ void attention_softmax_kernel1(float* att, int rows, int T) {
  const int warps_per_block = blockDim.x / 32;
  const int row = blockIdx.x * warps_per_block + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;  // the whole warp leaves together: the shuffles below see all 32 lanes
  const int t = row % T;    // rows are (b, h, t) with t fastest
  float* a = att + static_cast<long>(row) * T;
  // Subtract the row max so every exponent is <= 0: exp cannot overflow, and the max term is exactly 1.
  float m = -INFINITY;
  for (int j = lane; j <= t; j += 32) m = fmaxf(m, a[j]);
  m = warp_max(m);
  float s = 0.0f;
  for (int j = lane; j <= t; j += 32) {
    const float e = expf(a[j] - m);
    a[j] = e;
    s += e;
  }
  s = warp_sum(s);
  const float inv = 1.0f / s;
  for (int j = lane; j < T; j += 32) a[j] = j <= t ? a[j] * inv : 0.0f;  // the causal mask: t never sees j > t
}

// out[b, t, h, d] = sum_{j <= t} att[b, h, t, j] v[b, j, g, d]. One thread per output element.
__global__ void attention_weighted_sum_kernel1(float* out, const float* att, const float* v, int B, int T, int H,
                                               int Hkv, int Dv) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;  // over (B, T, H, Dv)
  if (i >= static_cast<long>(B) * T * H * Dv) return;
  const int d = static_cast<int>(i % Dv), h = static_cast<int>((i / Dv) % H);
  const int t = static_cast<int>((i / Dv / H) % T), b = static_cast<int>(i / Dv / H / T);
  const float* p = att + att_row(b, h, t, H, T);
  const int g = h / (H / Hkv);
  float o = 0.0f;
  for (int j = 0; j <= t; j++) o += p[j] * v[row_offset(b, j, g, T, Hkv, Dv) + d];
  out[i] = o;
}

// ---- version 2: fused, tiled, online softmax ----------------------------------------------------------------------

// Shared memory of one block, in floats: the block's query rows, one K tile (rows padded to Dk + 1 floats so that
// the 32 lanes, each reading its own key row at the same c, hit 32 different banks instead of one), one V tile,
// and the running output rows.
static size_t flash_shared_floats(int Dk, int Dv) {
  return static_cast<size_t>(kFlashRows) * Dk + static_cast<size_t>(kFlashTile) * (Dk + 1) +
         static_cast<size_t>(kFlashTile) * Dv + static_cast<size_t>(kFlashRows) * Dv;
}

// Loads key/value rows j0 .. j0 + 31 of kv head g into the tiles (zeros past T).
__device__ __forceinline__ void flash_load_tile(float* k_tile, float* v_tile, const float* k, const float* v, int b,
                                                int g, int j0, int T, int Hkv, int Dk, int Dv) {
  for (int i = threadIdx.x; i < kFlashTile * Dk; i += blockDim.x) {
    const int jj = i / Dk, c = i % Dk, j = j0 + jj;
    k_tile[jj * (Dk + 1) + c] = j < T ? k[row_offset(b, j, g, T, Hkv, Dk) + c] : 0.0f;
  }
  if (v_tile == nullptr) return;
  for (int i = threadIdx.x; i < kFlashTile * Dv; i += blockDim.x) {
    const int jj = i / Dv, d = i % Dv, j = j0 + jj;
    v_tile[jj * Dv + d] = j < T ? v[row_offset(b, j, g, T, Hkv, Dv) + d] : 0.0f;
  }
}

// grid (ceil(T / kFlashRows), B * H), block kFlashRows warps. Warp w owns query row t = blockIdx.x * kFlashRows + w.
__global__ void attention_forward_kernel2(float* out, float* att, const float* q, const float* k, const float* v,
                                          int B, int T, int H, int Hkv, int Dk, int Dv, float scale) {
  DYNAMIC_SHARED(float, smem);
  float* q_rows = smem;                                 // (kFlashRows, Dk)
  float* k_tile = q_rows + kFlashRows * Dk;             // (kFlashTile, Dk + 1)
  float* v_tile = k_tile + kFlashTile * (Dk + 1);       // (kFlashTile, Dv)
  float* o_rows = v_tile + kFlashTile * Dv;             // (kFlashRows, Dv)
  const int b = blockIdx.y / H, h = blockIdx.y % H, g = h / (H / Hkv);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int t0 = blockIdx.x * kFlashRows, t = t0 + warp;
  const int last_row = (t0 + kFlashRows < T ? t0 + kFlashRows : T) - 1;  // the block's last real query row

  for (int i = threadIdx.x; i < kFlashRows * Dk; i += blockDim.x) {
    const int r = i / Dk, c = i % Dk;
    q_rows[i] = t0 + r < T ? q[row_offset(b, t0 + r, h, T, H, Dk) + c] : 0.0f;
  }
  for (int i = threadIdx.x; i < kFlashRows * Dv; i += blockDim.x) o_rows[i] = 0.0f;
  const float* qt = q_rows + warp * Dk;
  float* ot = o_rows + warp * Dv;

  // Every warp runs the same tiles (bounded by the block's last row), so every thread meets every barrier.
  float m = -INFINITY, l = 0.0f;  // running max and running sum of exp(s - m) of this warp's row
  for (int j0 = 0; j0 <= last_row; j0 += kFlashTile) {
    __syncthreads();  // the previous tile has been read by every warp (and q_rows / o_rows are initialised)
    flash_load_tile(k_tile, v_tile, k, v, b, g, j0, T, Hkv, Dk, Dv);
    __syncthreads();  // the tile is complete before anyone reads it
    const int j = j0 + lane;
    const bool visible = t < T && j <= t;  // causal mask (and rows past T in the last block see nothing)
    float s = -INFINITY;
    if (visible) {
      const float* kj = k_tile + lane * (Dk + 1);
      float dot = 0.0f;
      for (int c = 0; c < Dk; c++) dot += qt[c] * kj[c];
      s = scale * dot;
    }
    const float m_new = fmaxf(m, warp_max(s));
    if (m_new == -INFINITY) continue;  // no visible key in this tile for this row (the next barrier is at the top)
    const float p = visible ? expf(s - m_new) : 0.0f;
    const float alpha = expf(m - m_new);  // rescales what was accumulated under the old max (0 on the first tile)
    l = l * alpha + warp_sum(p);
    m = m_new;
    // o[d] = alpha o[d] + sum_jj p_jj v[jj, d]; lane d0 + lane owns column d, so no two lanes write one o element.
    // Every lane runs every shuffle (the d < Dv test is inside), as a shuffle needs all 32 lanes.
    for (int d0 = 0; d0 < Dv; d0 += 32) {
      const int d = d0 + lane;
      float acc = d < Dv ? ot[d] * alpha : 0.0f;
      for (int jj = 0; jj < kFlashTile; jj++) {
        const float pj = __shfl_sync(kFullMask, p, jj);  // broadcast lane jj's probability
        if (d < Dv) acc += pj * v_tile[jj * Dv + d];
      }
      if (d < Dv) ot[d] = acc;
    }
  }
  if (t < T) {
    for (int d = lane; d < Dv; d += 32) out[row_offset(b, t, h, T, H, Dv) + d] = ot[d] / l;
  }

  // Second sweep, only because the op returns att: P[t, j] = exp(s - m) / l with the row's final m and l.
  const float inv_l = 1.0f / l;
  for (int j0 = 0; j0 < T; j0 += kFlashTile) {
    const bool needs_keys = j0 <= last_row;  // the same for the whole block, so the barriers stay uniform
    if (needs_keys) {
      __syncthreads();
      flash_load_tile(k_tile, nullptr, k, v, b, g, j0, T, Hkv, Dk, Dv);
      __syncthreads();
    }
    const int j = j0 + lane;
    if (t >= T || j >= T) continue;
    float pj = 0.0f;
    if (j <= t) {
      const float* kj = k_tile + lane * (Dk + 1);
      float dot = 0.0f;
      for (int c = 0; c < Dk; c++) dot += qt[c] * kj[c];
      pj = expf(scale * dot - m) * inv_l;
    }
    att[att_row(b, h, t, H, T) + j] = pj;
  }
}

// ---- backward -------------------------------------------------------------------------------------------------------

// grid (T, B * H): block (t, b, h) handles query row t of head h.
// forward was: S = scale Q K^T; P = softmax(S); O = P V. Dynamic shared memory: the row's dP, then dS (T floats).
__global__ void attention_backward_kernel1(float* dq, float* dk, float* dv, const float* dout, const float* q,
                                           const float* k, const float* v, const float* att, int B, int T, int H,
                                           int Hkv, int Dk, int Dv, float scale) {
  DYNAMIC_SHARED(float, ds);  // (T): dP[t, j], overwritten in place by dS[t, j]
  STATIC_SHARED(float, scratch, [32]);
  const int t = blockIdx.x, b = blockIdx.y / H, h = blockIdx.y % H, g = h / (H / Hkv);
  const float* p = att + att_row(b, h, t, H, T);
  const float* dO = dout + row_offset(b, t, h, T, H, Dv);
  // dP[t, j] = dO[t] . V[j] for the visible j <= t; and rowsum(dP .* P) on the way.
  float r = 0.0f;
  for (int j = threadIdx.x; j <= t; j += blockDim.x) {
    const float* vj = v + row_offset(b, j, g, T, Hkv, Dv);
    float dp = 0.0f;
    for (int d = 0; d < Dv; d++) dp += dO[d] * vj[d];
    ds[j] = dp;
    r += p[j] * dp;
  }
  r = block_sum(r, scratch);  // has barriers: every ds[j] is also written when it returns
  // Softmax Jacobian: dS = P .* (dP - rowsum(dP .* P)); scale folded in once, so dq and dk below are plain products.
  for (int j = threadIdx.x; j <= t; j += blockDim.x) ds[j] = scale * p[j] * (ds[j] - r);
  __syncthreads();  // the whole dS row is ready
  // dQ[t] = dS[t] K: this block is the only writer of dq's row t of head h.
  for (int c = threadIdx.x; c < Dk; c += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j <= t; j++) acc += ds[j] * k[row_offset(b, j, g, T, Hkv, Dk) + c];
    dq[row_offset(b, t, h, T, H, Dk) + c] = acc;
  }
  // dK[j] += dS[t, j] Q[t] and dV[j] += P[t, j] dO[t] for every j <= t: rows t' >= j of every head of the group
  // add into the same dk / dv row from other blocks, hence the atomics.
  const float* qt = q + row_offset(b, t, h, T, H, Dk);
  for (long i = threadIdx.x; i < static_cast<long>(t + 1) * Dk; i += blockDim.x) {
    const int j = static_cast<int>(i / Dk), c = static_cast<int>(i % Dk);
    atomicAdd(&dk[row_offset(b, j, g, T, Hkv, Dk) + c], ds[j] * qt[c]);
  }
  for (long i = threadIdx.x; i < static_cast<long>(t + 1) * Dv; i += blockDim.x) {
    const int j = static_cast<int>(i / Dv), d = static_cast<int>(i % Dv);
    atomicAdd(&dv[row_offset(b, j, g, T, Hkv, Dv) + d], p[j] * dO[d]);
  }
}

// ---- launchers ------------------------------------------------------------------------------------------------------

static void check_dims(int B, int T, int H, int Hkv, int Dk, int Dv, const char* where) {
  if (B <= 0 || T <= 0 || H <= 0 || Hkv <= 0 || Dk <= 0 || Dv <= 0)
    throw_error(where, ": every dim must be positive (B=", B, " T=", T, " H=", H, " Hkv=", Hkv, " Dk=", Dk,
                " Dv=", Dv, ")");
  if (H % Hkv != 0) throw_error(where, ": H = ", H, " query heads is not a multiple of Hkv = ", Hkv, " kv heads");
}

void attention_forward(float* out, float* att, const float* q, const float* k, const float* v, int B, int T, int H,
                       int Hkv, int Dk, int Dv, float scale, int version) {
  check_dims(B, T, H, Hkv, Dk, Dv, "attention_forward");
  switch (version) {
    case 1: {
      const long scores = static_cast<long>(B) * H * T * T, rows = static_cast<long>(B) * H * T;
      const long outs = static_cast<long>(B) * T * H * Dv;
      launch(attention_scores_kernel1, dim3(ceil_div(scores, kAttBlock)), dim3(kAttBlock), 0, att, q, k, B, T, H,
             Hkv, Dk, scale);
      launch(attention_softmax_kernel1, dim3(ceil_div(rows, kAttBlock / 32)), dim3(kAttBlock), 0, att,
             static_cast<int>(rows), T);
      launch(attention_weighted_sum_kernel1, dim3(ceil_div(outs, kAttBlock)), dim3(kAttBlock), 0, out, att, v, B, T,
             H, Hkv, Dv);
      break;
    }
    case 0:
    case 2: {
      const size_t smem = flash_shared_floats(Dk, Dv) * sizeof(float);
      if (smem > kMaxDefaultSharedBytes)
        throw_error("attention_forward: version 2 needs ", smem, " bytes of shared memory for Dk = ", Dk, ", Dv = ",
                    Dv, " (more than the default 48 KiB); use version 1");
      launch(attention_forward_kernel2, dim3(ceil_div(T, kFlashRows), B * H), dim3(kFlashRows * 32), smem, out, att,
             q, k, v, B, T, H, Hkv, Dk, Dv, scale);
      break;
    }
    default: throw_error("attention_forward: no kernel version ", version);
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* att, int B, int T, int H, int Hkv, int Dk, int Dv, float scale,
                        int version) {
  check_dims(B, T, H, Hkv, Dk, Dv, "attention_backward");
  if (version != 0 && version != 1) throw_error("attention_backward: no kernel version ", version);
  const size_t smem = static_cast<size_t>(T) * sizeof(float);
  if (smem > kMaxDefaultSharedBytes)
    throw_error("attention_backward: T = ", T, " needs ", smem, " bytes of shared memory (more than 48 KiB)");
  // dk and dv are written by the op but accumulated by the atomics: start them from 0.
  CUDA_CHECK(cudaMemset(dk, 0, sizeof(float) * static_cast<size_t>(B) * T * Hkv * Dk));
  CUDA_CHECK(cudaMemset(dv, 0, sizeof(float) * static_cast<size_t>(B) * T * Hkv * Dv));
  launch(attention_backward_kernel1, dim3(T, B * H), dim3(kAttBackwardBlock), smem, dq, dk, dv, dout, q, k, v, att,
         B, T, H, Hkv, Dk, Dv, scale);
}

}  // namespace tinyds::cuda
