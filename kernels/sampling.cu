// kernels/sampling.cu — choosing the next token from logits on the GPU: greedy, or temperature with top-k and top-p
// (nucleus, Holtzman et al. 2020) filtering. CPU reference: sample_token in tinyds/model/sampling.h; the random
// number is an input here (uniforms[n], the rng.uniform_double() the CPU would draw), so both choose the same token.
//
// Shapes: N rows, V vocab.   logits (N, V), uniforms (N), tokens (N).
// Per row, as the CPU: sort the ids by logit (highest first, ties by lower id); keep the first top_k (0 = all);
// p_i = exp((logit_i - logit_max) / temperature) over the kept ids; keep the smallest prefix whose normalised mass
// reaches top_p; draw u * (that prefix's mass) and walk the prefix subtracting p_i until u < 0.
//
// Version 1 (the only one): one block per row.
//   Sorting by ranking: thread v counts the ids that come before v in the order (larger logit, or equal logit and
//   smaller id); that count is v's position, and ids[position] = v. The order is strict and total, so the
//   positions are a permutation: every slot written once, no two threads collide. It costs V^2 comparisons per
//   row, nothing for tinyds's V = 128 (a large-vocab sampler would use a radix select of the top k instead).
//   The exps run in parallel; the running sums (the nucleus mass and the walk with u) run on thread 0 in the CPU's
//   order and in double: the token is a discrete choice, and a sum added in another order could move a boundary
//   across u and pick a different token than the CPU for the same u.
#include "kernels/common.cuh"
#include "kernels/sampling.cuh"
#include "tinyds/core/error.h"

namespace tinyds::cuda {

constexpr int kSamplingBlock = 256;
constexpr int kSamplingMaxVocab = 4096;  // V doubles + V ints of shared memory: 48 KiB

__global__ void sample_tokens_kernel1(int* tokens, const float* logits, const double* uniforms, int V,
                                      float temperature, int top_k, float top_p) {
  DYNAMIC_SHARED(double, smem);
  double* p = smem;                          // (V) unnormalised probabilities, in sorted order
  int* ids = reinterpret_cast<int*>(p + V);  // (V) token ids sorted by logit, highest first
  const int n = blockIdx.x;
  const float* x = logits + static_cast<long>(n) * V;

  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float xv = x[v];
    int rank = 0;
    for (int u = 0; u < V; u++) rank += (x[u] > xv || (x[u] == xv && u < v)) ? 1 : 0;
    ids[rank] = v;
  }
  __syncthreads();  // the sorted ids are complete
  if (temperature == 0.0f) {  // greedy: the first of the sorted ids is the first maximal logit (std::max_element)
    if (threadIdx.x == 0) tokens[n] = ids[0];
    return;  // taken by the whole block (temperature is the same for every thread): no barrier is skipped
  }
  const int keep = top_k > 0 && top_k < V ? top_k : V;
  // Max subtraction (the first sorted logit is the max): every exponent is <= 0, no overflow.
  const double mx = x[ids[0]];
  for (int i = threadIdx.x; i < keep; i += blockDim.x)
    p[i] = exp((static_cast<double>(x[ids[i]]) - mx) / static_cast<double>(temperature));
  __syncthreads();  // every p_i is in place for thread 0's serial sums
  if (threadIdx.x != 0) return;
  double sum = 0.0;
  for (int i = 0; i < keep; i++) sum += p[i];
  // Nucleus: the smallest prefix whose mass reaches top_p.
  double mass = 0.0;
  int nucleus = keep;
  for (int i = 0; i < keep; i++) {
    mass += p[i] / sum;
    if (mass >= top_p) {
      nucleus = i + 1;
      break;
    }
  }
  double total = 0.0;
  for (int i = 0; i < nucleus; i++) total += p[i];
  double u = uniforms[n] * total;
  int chosen = ids[nucleus - 1];  // reached only if rounding leaves u >= 0 after the whole prefix
  for (int i = 0; i < nucleus; i++) {
    u -= p[i];
    if (u < 0) {
      chosen = ids[i];
      break;
    }
  }
  tokens[n] = chosen;
}

void sample_tokens(int* tokens, const float* logits, const double* uniforms, int N, int V, float temperature,
                   int top_k, float top_p, int version) {
  if (!(temperature >= 0)) throw_error("sample_tokens: temperature ", temperature, " must be >= 0");
  if (top_k < 0) throw_error("sample_tokens: top_k ", top_k, " must be >= 0");
  if (!(top_p > 0 && top_p <= 1)) throw_error("sample_tokens: top_p ", top_p, " must be in (0, 1]");
  if (V < 1 || V > kSamplingMaxVocab)
    throw_error("sample_tokens: V = ", V, " must be in [1, ", kSamplingMaxVocab, "] (shared memory per row)");
  if (N < 0) throw_error("sample_tokens: N = ", N, " must be >= 0");
  if (version != 0 && version != 1) throw_error("sample_tokens: no kernel version ", version);
  if (N == 0) return;
  const size_t smem = static_cast<size_t>(V) * (sizeof(double) + sizeof(int));
  launch(sample_tokens_kernel1, dim3(N), dim3(kSamplingBlock), smem, tokens, logits, uniforms, V, temperature, top_k,
         top_p);
}

}  // namespace tinyds::cuda
