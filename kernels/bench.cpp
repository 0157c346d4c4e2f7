// kernels/bench.cpp — timing of the kernels for `tinyds bench --kernels` (see bench.h).
// Shapes: rmsnorm N 1024 rows x C 1024; matmul N = IC = OC = 256; residual n = 1M elements.
#include "kernels/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/common.cuh"
#include "kernels/matmul.cuh"
#include "kernels/residual.cuh"
#include "kernels/rmsnorm.cuh"

namespace tinyds::cuda {

namespace {

// A cudaMalloc'd array of n floats uniform in [-1, 1), freed at scope exit.
struct Buffer {
  float* p = nullptr;
  explicit Buffer(size_t n, unsigned seed = 1) {
    CUDA_CHECK(cudaMalloc(&p, n * sizeof(float)));
    std::vector<float> host(n);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (float& x : host) x = dist(rng);
    CUDA_CHECK(cudaMemcpy(p, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  }
  ~Buffer() { cudaFree(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

struct Row {
  std::string op;
  int version;
  std::string shape;
  double flops;  // per call, 0 if the op is memory-bound (then bytes is printed as GB/s)
  double bytes;  // moved per call (the minimum: each input read once, each output written once)
  std::function<void()> call;
};

// Median seconds per call over `reps` calls, after one warm-up call.
double time_call(const std::function<void()>& call, int reps) {
  call();
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> t;
  for (int r = 0; r < reps; r++) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    CUDA_CHECK(cudaDeviceSynchronize());  // launches return before the GPU has finished (native build)
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int bench_kernels(int reps) {
  const long n_res = 1L << 20;
  const int N = 1024, C = 1024, M = 256;
  Buffer a(n_res, 1), b(n_res, 2), out(n_res, 3);
  Buffer x(static_cast<size_t>(N) * C, 4), y(static_cast<size_t>(N) * C, 5), dy(static_cast<size_t>(N) * C, 6);
  Buffer w(C, 7), dw(C, 8), rstd(N, 9);
  Buffer mi(M * M, 10), mw(M * M, 11), mb(M, 12), mo(M * M, 13), mdo(M * M, 14), mdi(M * M, 15), mdw(M * M, 16),
      mdb(M, 17);
  rmsnorm_forward(y.p, rstd.p, x.p, w.p, N, C, 1e-5f);  // a valid rstd for the backward rows

  std::vector<Row> rows;
  const double f = sizeof(float);
  rows.push_back({"residual_forward", 1, "n=1M", 0, 3 * f * n_res, [&] { residual_forward(out.p, a.p, b.p, n_res, 1); }});
  for (int v = 1; v <= 3; v++) {
    rows.push_back({"rmsnorm_forward", v, "N=1024 C=1024", 0, 2 * f * N * C,
                    [&, v] { rmsnorm_forward(y.p, rstd.p, x.p, w.p, N, C, 1e-5f, v); }});
    rows.push_back({"rmsnorm_backward", v, "N=1024 C=1024", 0, 3 * f * N * C,
                    [&, v] { rmsnorm_backward(y.p, dw.p, dy.p, x.p, w.p, rstd.p, N, C, v); }});
  }
  const int max_matmul = TINYDS_CUDA_NATIVE ? 4 : 3;
  for (int v = 1; v <= max_matmul; v++) {
    rows.push_back({"matmul_forward", v, "256x256x256", 2.0 * M * M * M, 0,
                    [&, v] { matmul_forward(mo.p, mi.p, mw.p, mb.p, M, M, M, v); }});
    rows.push_back({"matmul_backward", v, "256x256x256", 4.0 * M * M * M, 0,
                    [&, v] { matmul_backward(mdi.p, mdw.p, mdb.p, mdo.p, mi.p, mw.p, M, M, M, v); }});
  }

  if (!TINYDS_CUDA_NATIVE)
    std::printf("kernels under the CPU emulation of CUDA: these are CPU times of the emulated kernels (fibers, one\n"
                "block per OpenMP thread), NOT GPU figures; they show what each version costs to emulate.\n");
  std::printf("%-18s %3s  %-14s %12s  %s\n", "op", "ver", "shape", "ms/call", "rate");
  for (const Row& r : rows) {
    const double s = time_call(r.call, reps);
    const double rate = r.flops > 0 ? r.flops / s * 1e-9 : r.bytes / s * 1e-9;
    std::printf("%-18s %3d  %-14s %12.3f  %.2f %s\n", r.op.c_str(), r.version, r.shape.c_str(), s * 1e3, rate,
                r.flops > 0 ? "GFLOP/s" : "GB/s");
  }
  return static_cast<int>(rows.size());
}

}  // namespace tinyds::cuda
