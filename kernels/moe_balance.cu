// kernels/moe_balance.cu — MoE load balancing on the GPU: the expert-load histogram, the auxiliary-loss-free bias
// update, MaxVio, and the sequence-wise (V3) and expert-level (DeepSeekMoE) balance losses with their backward.
//
// Shapes: N = B*T tokens, E routed experts, K experts per token, P = N*K (token, slot) pairs.
// CPU reference: tinyds/ops/moe_balance.h (.cpp). Formulas (DESIGN 4.3):
//   load_i = #{(n, k) : topk_idx[n, k] == i}
//   b_i   += gamma * sign(mean(load) - load_i)                    (V3 §2.1.2; Loss-Free Balancing arXiv 2408.15664)
//   MaxVio = max_i load_i / mean(load) - 1
//   f_i = E / (K T) * count_i;  P_i = (1/T) sum_t s_ti / sum_j s_tj                     (V3 Eq. 18-20)
//   L = alpha/B * sum_b sum_i f_bi P_bi                                                 (V3 Eq. 17, mean over b)
// Gradients: dscores WRITTEN (=).
//
// One version of each kernel; what they teach:
//   - expert_load: a histogram in shared memory (fast atomics on a block-private copy), then ONE global atomicAdd
//     per expert per block. Integer additions commute exactly, so the counts are deterministic whatever order the
//     atomics land in (unlike float atomics).
//   - update_bias / maxvio: a single-block tree reduction (the sum of E integers), then an elementwise update.
//   - seqaux_forward: one block per sequence; the per-sequence partial sums go back to the host, which adds them
//     in sequence order, as the CPU does, so the loss has the CPU's bits.
//   - seqaux_backward: one thread per token, its row sums in the CPU's order (bit-identical under emulation).
#include "kernels/common.cuh"
#include "kernels/moe_balance.cuh"

#include <vector>

#include "tinyds/core/error.h"

namespace tinyds::cuda {

namespace {

constexpr int kBlock = 256;  // threads per block of the single-block reductions (a power of two)

// Sum of v over the block's kBlock threads, returned to every thread. All threads must call it (it has barriers).
// buf: kBlock values of shared memory.
template <typename T>
__device__ T block_sum(T* buf, T v) {
  buf[threadIdx.x] = v;
  __syncthreads();
  // Tree: at each step the lower half adds the upper half; the barrier orders the steps.
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) buf[threadIdx.x] += buf[threadIdx.x + stride];
    __syncthreads();
  }
  const T total = buf[0];
  __syncthreads();  // everyone has read buf[0] before a later call overwrites buf
  return total;
}

__global__ void moe_expert_load_kernel1(int* load,            // (E) accumulated into (zeroed by the launcher)
                                        const int* topk_idx,  // (N, K)
                                        long P, int E) {
  DYNAMIC_SHARED(int, hist);  // (E) this block's counts
  for (int e = threadIdx.x; e < E; e += blockDim.x) hist[e] = 0;
  __syncthreads();
  // Grid-stride loop: any grid size covers all P pairs.
  for (long p = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; p < P;
       p += static_cast<long>(gridDim.x) * blockDim.x)
    atomicAdd(&hist[topk_idx[p]], 1);  // shared-memory atomics: contention only within the block
  __syncthreads();  // the block's histogram is complete
  for (int e = threadIdx.x; e < E; e += blockDim.x)
    if (hist[e] != 0) atomicAdd(&load[e], hist[e]);  // integer sums: the same total in any order
}

__global__ void moe_update_bias_kernel1(float* bias, const int* load, int E, float gamma) {
  STATIC_SHARED(long long, buf, [kBlock]);
  long long mine = 0;
  for (int i = threadIdx.x; i < E; i += blockDim.x) mine += load[i];
  const long long total = block_sum(buf, mine);
  for (int i = threadIdx.x; i < E; i += blockDim.x) {
    // sign(mean - load_i) = sign(total - E * load_i): compared in integers, so an exactly average expert gets
    // sign 0 (no rounding of the mean can make it look over- or underloaded).
    const long long d = total - static_cast<long long>(E) * load[i];
    const int sgn = (d > 0) - (d < 0);
    bias[i] += gamma * static_cast<float>(sgn);
  }
}

__global__ void moe_maxvio_kernel1(double* out, const int* load, int E) {
  STATIC_SHARED(long long, buf, [kBlock]);
  long long mine = 0, mx = 0;
  for (int i = threadIdx.x; i < E; i += blockDim.x) {
    mine += load[i];
    mx = load[i] > mx ? load[i] : mx;
  }
  const long long total = block_sum(buf, mine);
  // The largest load through the same tree shape, with max in place of +.
  buf[threadIdx.x] = mx;
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride && buf[threadIdx.x + stride] > buf[threadIdx.x])
      buf[threadIdx.x] = buf[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = total == 0 ? 0.0 : static_cast<double>(buf[0]) * E / static_cast<double>(total) - 1.0;
}

// One block per sequence b: f (B, E) written, partial[b] = sum_i f_bi P_bi (double, summed in i order).
__global__ void moe_seqaux_forward_kernel1(double* partial,      // (B) out
                                           float* f,             // (B, E) out
                                           const float* scores,  // (N, E)
                                           const int* topk_idx,  // (N, K)
                                           int T, int E, int K) {
  DYNAMIC_SHARED(double, seq_smem);  // term (E) doubles, then count (E) ints
  double* term = seq_smem;
  int* count = reinterpret_cast<int*>(seq_smem + E);
  const int b = blockIdx.x;
  const long row0 = static_cast<long>(b) * T;
  for (int i = threadIdx.x; i < E; i += blockDim.x) count[i] = 0;
  __syncthreads();
  for (long p = threadIdx.x; p < static_cast<long>(T) * K; p += blockDim.x)
    atomicAdd(&count[topk_idx[row0 * K + p]], 1);  // integer counts: the same in any order
  __syncthreads();
  for (int i = threadIdx.x; i < E; i += blockDim.x) {
    // f_i = E / (K T) * sum_t 1[i chosen for t]   (V3 Eq. 18)
    const float fi = static_cast<float>(double(E) * count[i] / (double(K) * T));
    f[static_cast<long>(b) * E + i] = fi;
    // P_i = (1/T) sum_t s_ti / S_t   (V3 Eq. 19-20). Each thread recomputes S_t for its expert: E-fold redundant
    // work, but no scratch, no barrier, and S_t summed in j order exactly as the CPU does.
    double Pi = 0.0;
    for (int t = 0; t < T; t++) {
      const float* s = scores + (row0 + t) * E;
      double S = 0.0;
      for (int j = 0; j < E; j++) S += s[j];
      Pi += s[i] / S;
    }
    term[i] = static_cast<double>(fi) * (Pi / T);
  }
  __syncthreads();
  if (threadIdx.x == 0) {  // sum_i f_i P_i in i order, like the CPU (E terms: a serial sum costs nothing here)
    double fp = 0.0;
    for (int i = 0; i < E; i++) fp += term[i];
    partial[b] = fp;
  }
}

// forward was: L = (alpha / B) sum_b sum_i f_bi P_bi,  P_bi = (1/T) sum_t s_ti / S_t
//   dL/ds_tj = c / S_t * (f_bj - sum_i f_bi s_ti / S_t),  c = dloss * alpha / (B T)   (f held constant)
__global__ void moe_seqaux_backward_kernel1(float* dscores,       // (N, E) written
                                            const float* f,       // (B, E)
                                            const float* scores,  // (N, E)
                                            int N, int T, int E, double c) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const float* s = scores + static_cast<long>(n) * E;
  const float* fb = f + static_cast<long>(n / T) * E;
  float* ds = dscores + static_cast<long>(n) * E;
  double S = 0.0, fs = 0.0;
  for (int j = 0; j < E; j++) S += s[j];
  for (int i = 0; i < E; i++) fs += static_cast<double>(fb[i]) * s[i];
  fs /= S;  // sum_i f_i s'_ti
  for (int j = 0; j < E; j++) ds[j] = static_cast<float>(c / S * (static_cast<double>(fb[j]) - fs));
}

void check_loss_dims(int B, int T, int E, int K, const char* where) {
  if (B < 1 || T < 1 || E < 1 || K < 1 || K > E)
    throw_error(where, ": need B >= 1, T >= 1 and 1 <= K <= E, got B=", B, " T=", T, " E=", E, " K=", K);
}

}  // namespace

void moe_expert_load(int* load, const int* topk_idx, int N, int K, int E) {
  if (N < 0 || K < 1 || E < 1 || E > 12 * 1024)
    throw_error("cuda::moe_expert_load: need N >= 0, K >= 1, 1 <= E <= 12288 (one int per expert in 48 KiB of "
                "shared memory), got N=", N, " K=", K, " E=", E);
  CUDA_CHECK(cudaMemset(load, 0, sizeof(int) * E));
  const long P = static_cast<long>(N) * K;
  if (P == 0) return;
  const int block = 256;
  // Enough blocks to fill a GPU; more would only add global atomics (each block adds its E counts once).
  const unsigned grid = ceil_div(P, block) < 128u ? ceil_div(P, block) : 128u;
  launch(moe_expert_load_kernel1, dim3(grid), dim3(block), sizeof(int) * E, load, topk_idx, P, E);
}

void moe_update_bias(float* bias, const int* load, int E, float gamma) {
  if (E < 1) throw_error("cuda::moe_update_bias: need E >= 1, got E=", E);
  launch(moe_update_bias_kernel1, dim3(1), dim3(kBlock), 0, bias, load, E, gamma);
}

double moe_maxvio(const int* load, int E) {
  if (E < 1) throw_error("cuda::moe_maxvio: need E >= 1, got E=", E);
  double* d_out = nullptr;
  CUDA_CHECK(cudaMalloc(&d_out, sizeof(double)));
  launch(moe_maxvio_kernel1, dim3(1), dim3(kBlock), 0, d_out, load, E);
  double out = 0.0;
  CUDA_CHECK(cudaMemcpy(&out, d_out, sizeof(double), cudaMemcpyDeviceToHost));  // waits for the kernel
  CUDA_CHECK(cudaFree(d_out));
  return out;
}

float moe_seqaux_forward(float* f, const float* scores, const int* topk_idx, int B, int T, int E, int K,
                         float alpha) {
  check_loss_dims(B, T, E, K, "cuda::moe_seqaux_forward");
  const size_t smem = (sizeof(double) + sizeof(int)) * E;
  if (smem > 48 * 1024) throw_error("cuda::moe_seqaux_forward: E=", E, " needs more than 48 KiB of shared memory");
  double* d_partial = nullptr;
  CUDA_CHECK(cudaMalloc(&d_partial, sizeof(double) * B));
  launch(moe_seqaux_forward_kernel1, dim3(B), dim3(128), smem, d_partial, f, scores, topk_idx, T, E, K);
  std::vector<double> partial(B);
  CUDA_CHECK(cudaMemcpy(partial.data(), d_partial, sizeof(double) * B, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaFree(d_partial));
  double total = 0.0;  // in b order, like the CPU
  for (int b = 0; b < B; b++) total += partial[b];
  return static_cast<float>(static_cast<double>(alpha) * total / B);
}

void moe_seqaux_backward(float* dscores, float dloss, const float* f, const float* scores, int B, int T, int E,
                         float alpha) {
  check_loss_dims(B, T, E, 1, "cuda::moe_seqaux_backward");
  const int N = B * T, block = 128;
  const double c = static_cast<double>(dloss) * alpha / (static_cast<double>(B) * T);
  launch(moe_seqaux_backward_kernel1, dim3(ceil_div(N, block)), dim3(block), 0, dscores, f, scores, N, T, E, c);
}

// The expert-level loss is the sequence-wise loss with one "sequence" holding all N tokens (as on the CPU).
float moe_aux_forward(float* f, const float* scores, const int* topk_idx, int N, int E, int K, float alpha) {
  return moe_seqaux_forward(f, scores, topk_idx, 1, N, E, K, alpha);
}

void moe_aux_backward(float* dscores, float dloss, const float* f, const float* scores, int N, int E, float alpha) {
  moe_seqaux_backward(dscores, dloss, f, scores, 1, N, E, alpha);
}

}  // namespace tinyds::cuda
