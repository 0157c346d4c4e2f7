// kernels/matmul.cu — the linear layer on the GPU: one matrix product, written three ways, from naive to
// register-blocked. CPU reference: tinyds/ops/matmul.h.
//
// Shapes: N rows (B*T), IC input width, OC output width.
//   forward   out (N, OC)      = inp (N, IC) @ weight^T + bias      weight (OC, IC) as in PyTorch's nn.Linear
//   backward  dinp (N, IC)     = dout (N, OC) @ weight              (written)
//             dweight (OC, IC) += dout^T @ inp                      (accumulated)
//             dbias (OC)       += sum over rows of dout             (accumulated)
// All three products are the same operation, C (M, P) (=|+=) A (M, K) @ B (K, P), reading A and B through strides:
// A(m, k) = a[m * a_sm + k * a_sk], B(k, p) = b[k * b_sk + p * b_sp]. A transpose is a swap of strides, not a copy,
// so each version below is written once and serves forward and backward (see the launchers at the bottom).
//
// What each version teaches (FLOPs = 2 M P K; the question is how many bytes each FLOP costs):
//   1  naive: one thread per output element, K multiply-adds from global memory. Every A and B element is read
//      from global memory P (or M) times; caches help, but it is memory-bound.
//   2  shared-memory tiles: a 16x16 block loads a 16x16 tile of A and of B into __shared__ memory once, then
//      every thread reads them 16 times from there. Global traffic drops 16x. Two barriers per tile: after the
//      load (tiles complete before use) and after the use (nobody still reading before the next load overwrites).
//   3  register blocking: a 256-thread block computes a 64x64 tile of C, each thread a 4x4 grid of outputs held in
//      registers; per k, a thread loads 4 values of A and 4 of B from shared memory and does 16 multiply-adds, so
//      shared-memory traffic per FLOP drops 4x more. The default (version 0).
//   4  cuBLAS (native build only): the vendor library, for comparison.
// Nothing here uses tensor cores (fp32 FMA only), so on an H100 even version 3 is far from cuBLAS; llm.c's
// dev/cuda/matmul_forward.cu goes further (float4 loads, larger tiles, TF32 tensor cores).
#include "kernels/common.cuh"
#include "kernels/matmul.cuh"

#if defined(__CUDACC__)
#include <cublas_v2.h>
#endif

namespace tinyds::cuda {

// The strided operands of C = A @ B, shared by every version.
struct GemmOperands {
  const float* a;  // A(m, k) = a[m * a_sm + k * a_sk]
  long a_sm, a_sk;
  const float* b;  // B(k, p) = b[k * b_sk + p * b_sp]
  long b_sk, b_sp;
};

// ---- version 1: one thread per output -----------------------------------------------------------------------------
constexpr int kTile = 16;  // version 1 and 2 blocks are kTile x kTile threads

// threadIdx.x runs along a row of C, so the 16 threads of a half-warp write 16 consecutive floats (coalesced).
__global__ void matmul_kernel1(float* c, GemmOperands g, const float* bias, int M, int P, int K, int accumulate) {
  const int p = blockIdx.x * blockDim.x + threadIdx.x;
  const int m = blockIdx.y * blockDim.y + threadIdx.y;
  if (m >= M || p >= P) return;
  float acc = bias ? bias[p] : 0.0f;
  for (int k = 0; k < K; k++) acc += g.a[m * g.a_sm + k * g.a_sk] * g.b[k * g.b_sk + p * g.b_sp];
  float* out = &c[static_cast<long>(m) * P + p];
  *out = accumulate ? *out + acc : acc;
}

// ---- version 2: shared-memory tiles --------------------------------------------------------------------------------
__global__ void matmul_kernel2(float* c, GemmOperands g, const float* bias, int M, int P, int K, int accumulate) {
  STATIC_SHARED(float, a_tile, [kTile][kTile]);  // a_tile[i][j] = A(m0 + i, k0 + j)
  STATIC_SHARED(float, b_tile, [kTile][kTile]);  // b_tile[i][j] = B(k0 + i, p0 + j)
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int m = blockIdx.y * kTile + ty, p = blockIdx.x * kTile + tx;
  float acc = 0.0f;
  for (int k0 = 0; k0 < K; k0 += kTile) {
    // Each thread loads one element of each tile; outside the matrix it loads 0, which adds nothing.
    const int ka = k0 + tx, kb = k0 + ty;
    a_tile[ty][tx] = (m < M && ka < K) ? g.a[m * g.a_sm + ka * g.a_sk] : 0.0f;
    b_tile[ty][tx] = (kb < K && p < P) ? g.b[kb * g.b_sk + p * g.b_sp] : 0.0f;
    __syncthreads();  // both tiles complete before anyone reads them
    for (int j = 0; j < kTile; j++) acc += a_tile[ty][j] * b_tile[j][tx];
    __syncthreads();  // everyone done reading before the next iteration overwrites the tiles
  }
  // No early return above: threads outside C still had to load their tile elements and reach the barriers.
  if (m < M && p < P) {
    if (bias) acc += bias[p];
    float* out = &c[static_cast<long>(m) * P + p];
    *out = accumulate ? *out + acc : acc;
  }
}

// ---- version 3: 64x64 block tile, 4x4 outputs per thread ----------------------------------------------------------
constexpr int kBlockTile = 64;               // the block computes C[m0 : m0+64, p0 : p0+64]
constexpr int kDepthTile = 8;                // k advances 8 at a time
constexpr int kThreadTile = 4;               // each thread: 4 rows x 4 columns of C
constexpr int kThreads3 = (kBlockTile / kThreadTile) * (kBlockTile / kThreadTile);  // 16 x 16 = 256

__global__ void matmul_kernel3(float* c, GemmOperands g, const float* bias, int M, int P, int K, int accumulate) {
  // a_tile[k][i] = A(m0 + i, k0 + k): k-major, see the loop below
  STATIC_SHARED(float, a_tile, [kDepthTile][kBlockTile]);
  STATIC_SHARED(float, b_tile, [kDepthTile][kBlockTile]);  // b_tile[k][j] = B(k0 + k, p0 + j)
  const int t = threadIdx.x;
  const int tx = t % 16, ty = t / 16;  // this thread's outputs: rows ty + 16 i, columns tx + 16 j (i, j < 4)
  const int m0 = blockIdx.y * kBlockTile, p0 = blockIdx.x * kBlockTile;
  float acc[kThreadTile][kThreadTile] = {};
  for (int k0 = 0; k0 < K; k0 += kDepthTile) {
    // 256 threads load the 64x8 tile of A and the 8x64 tile of B: two elements of each per thread.
    for (int e = t; e < kBlockTile * kDepthTile; e += kThreads3) {
      const int ai = e / kDepthTile, ak = e % kDepthTile;  // A: walk k fastest
      const int bk = e / kBlockTile, bj = e % kBlockTile;  // B: walk p fastest
      const int m = m0 + ai, ka = k0 + ak, kb = k0 + bk, p = p0 + bj;
      a_tile[ak][ai] = (m < M && ka < K) ? g.a[m * g.a_sm + ka * g.a_sk] : 0.0f;
      b_tile[bk][bj] = (kb < K && p < P) ? g.b[kb * g.b_sk + p * g.b_sp] : 0.0f;
    }
    __syncthreads();  // tiles complete
    for (int k = 0; k < kDepthTile; k++) {
      // 8 shared-memory reads feed 16 multiply-adds: the outer product of a column of A and a row of B.
      float a[kThreadTile], b[kThreadTile];
      for (int i = 0; i < kThreadTile; i++) a[i] = a_tile[k][ty + 16 * i];
      for (int j = 0; j < kThreadTile; j++) b[j] = b_tile[k][tx + 16 * j];
      for (int i = 0; i < kThreadTile; i++)
        for (int j = 0; j < kThreadTile; j++) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();  // tiles no longer read
  }
  for (int i = 0; i < kThreadTile; i++) {
    const int m = m0 + ty + 16 * i;
    for (int j = 0; j < kThreadTile; j++) {
      const int p = p0 + tx + 16 * j;  // neighbouring threads (tx) write neighbouring columns: coalesced
      if (m >= M || p >= P) continue;
      const float v = acc[i][j] + (bias ? bias[p] : 0.0f);
      float* out = &c[static_cast<long>(m) * P + p];
      *out = accumulate ? *out + v : v;
    }
  }
}

// ---- dbias: thread per output channel, walking the rows in order (one writer per channel: no atomics) -------------
__global__ void matmul_backward_bias_kernel1(float* dbias, const float* dout, int N, int OC) {
  const int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= OC) return;
  float acc = 0.0f;
  for (int n = 0; n < N; n++) acc += dout[static_cast<long>(n) * OC + o];  // neighbouring threads: neighbouring o
  dbias[o] += acc;
}

#if defined(__CUDACC__)
// ---- version 4: cuBLAS (column-major) ----------------------------------------------------------------------------
// Row-major C (M, P) is column-major C^T (P, M), and C^T = B^T A^T: so cuBLAS is asked for B^T A^T. A row-major
// operand with unit stride along its columns is column-major transposed ("N"), the other kind is "T".
__global__ void matmul_fill_bias_kernel(float* c, const float* bias, int M, int P) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < static_cast<long>(M) * P) c[i] = bias[i % P];
}

namespace {
cublasHandle_t cublas_handle() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cublasCreate failed");
    return h;
  }();
  return handle;
}

void gemm_cublas(float* c, const GemmOperands& g, const float* bias, int M, int P, int K, bool accumulate) {
  float beta = accumulate ? 1.0f : 0.0f;
  if (bias) {  // C = bias broadcast, then C += A B
    launch(matmul_fill_bias_kernel, dim3(ceil_div(static_cast<long>(M) * P, 256)), dim3(256), 0, c, bias, M, P);
    beta = 1.0f;
  }
  const bool b_n = g.b_sp == 1, a_n = g.a_sk == 1;
  const float alpha = 1.0f;
  const cublasStatus_t st = cublasSgemm(cublas_handle(), b_n ? CUBLAS_OP_N : CUBLAS_OP_T, a_n ? CUBLAS_OP_N : CUBLAS_OP_T,
                                        P, M, K, &alpha, g.b, static_cast<int>(b_n ? g.b_sk : g.b_sp), g.a,
                                        static_cast<int>(a_n ? g.a_sm : g.a_sk), &beta, c, P);
  if (st != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cublasSgemm failed: status " + std::to_string(st));
}
}  // namespace
#endif

// ---- launchers -----------------------------------------------------------------------------------------------------
namespace {
// C (M, P) = A @ B (+ bias), or += when accumulate, with kernel `version`.
void gemm(float* c, const GemmOperands& g, const float* bias, int M, int P, int K, bool accumulate, int version) {
  if (M == 0 || P == 0) return;       // nothing to compute (a grid of 0 blocks is a launch error)
  if (K == 0 && accumulate) return;   // adds an empty sum
  switch (version) {
    case 1:
    case 2: {
      const dim3 grid(ceil_div(P, kTile), ceil_div(M, kTile)), block(kTile, kTile);
      launch(version == 1 ? matmul_kernel1 : matmul_kernel2, grid, block, 0, c, g, bias, M, P, K, int(accumulate));
      break;
    }
    case 0:
    case 3:
      launch(matmul_kernel3, dim3(ceil_div(P, kBlockTile), ceil_div(M, kBlockTile)), dim3(kThreads3), 0, c, g, bias,
             M, P, K, int(accumulate));
      break;
#if defined(__CUDACC__)
    case 4:
      gemm_cublas(c, g, bias, M, P, K, accumulate);
      break;
#endif
    default:
      throw std::runtime_error("matmul: no kernel version " + std::to_string(version) +
                               (TINYDS_CUDA_NATIVE ? " (have 1, 2, 3, 4)" : " (have 1, 2, 3; 4 is cuBLAS, native only)"));
  }
}
}  // namespace

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int IC, int OC,
                    int version) {
  // out (N, OC) = inp (N, IC) @ W^T:  A = inp, B(k=ic, p=oc) = weight[oc * IC + ic]
  gemm(out, GemmOperands{inp, IC, 1, weight, 1, IC}, bias, N, OC, IC, false, version);
}

// forward was: out = inp @ weight^T + bias
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int IC, int OC, int version) {
  // dinp (N, IC) = dout (N, OC) @ weight (OC, IC):  A = dout, B = weight, both read row by row
  if (dinp) gemm(dinp, GemmOperands{dout, OC, 1, weight, IC, 1}, nullptr, N, IC, OC, false, version);
  // dweight (OC, IC) += dout^T (OC, N) @ inp (N, IC):  A(m=oc, k=n) = dout[n * OC + oc], the transpose by strides
  gemm(dweight, GemmOperands{dout, 1, OC, inp, IC, 1}, nullptr, OC, IC, N, true, version);
  if (dbias && N > 0 && OC > 0)
    launch(matmul_backward_bias_kernel1, dim3(ceil_div(OC, 256)), dim3(256), 0, dbias, dout, N, OC);
}

}  // namespace tinyds::cuda
