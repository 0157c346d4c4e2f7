// tests/kernels/emulation_test.cpp — the CPU emulation of CUDA itself (kernels/emulation/cuda_emulation.h): barriers
// are real barriers, a missing barrier gives a wrong result, faults are reported with kernel, block and thread, and
// shuffles, ballots and atomics give what CUDA specifies. The kernels here are tiny test kernels, compiled by g++,
// and the block reduction with and without its first barrier (kernels/block_sum.cu).
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "kernels/block_sum.cuh"
#include "kernels/common.cuh"
#include "tests/kernels/kernel_util.h"

#if !TINYDS_CUDA_NATIVE  // these tests are about the emulation; the native build runs only the kernel table

using tinyds::cuda::launch;
using tinyds::test::DeviceBuffer;

namespace {

constexpr int kBlock = tinyds::cuda::kBlockSumThreads;  // block_sum's block, and the test kernels' below

// Threads 0..3 return early; the others then wait at a barrier the early ones never reach.
__global__ void divergent_barrier_kernel(float* out) {
  if (threadIdx.x < 4) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

// Even and odd threads wait at two different barriers.
__global__ void two_barriers_kernel(float* out) {
  if (threadIdx.x % 2 == 0) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}

// Writes one element past the end of its n-element output.
__global__ void write_past_end_kernel(float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = 2.0f;  // `<=`: the classic off-by-one
}

// Each lane collects what the shuffles give it, so every CUDA shuffle rule is checked against a formula.
__global__ void shuffle_kernel(int* xor_out, int* down_out, int* up_out, int* idx_out, int* width_out) {
  const int lane = threadIdx.x % 32, t = threadIdx.x;
  const int v = 100 * t;
  xor_out[t] = __shfl_xor_sync(0xffffffffu, v, 5);
  down_out[t] = __shfl_down_sync(0xffffffffu, v, 3);
  up_out[t] = __shfl_up_sync(0xffffffffu, v, 2);
  idx_out[t] = __shfl_sync(0xffffffffu, v, 31 - lane);
  width_out[t] = __shfl_sync(0xffffffffu, v, 1, 8);  // lane 1 of each segment of 8
}

__global__ void warp_sum_kernel(float* out, const float* inp) {
  float v = inp[blockIdx.x * blockDim.x + threadIdx.x];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  out[blockIdx.x * blockDim.x + threadIdx.x] = v;  // every lane holds its warp's sum
}

__global__ void vote_kernel(unsigned* ballot, int* any, int* all, int* all_true) {
  const int t = threadIdx.x;
  const int pred = t % 3 == 0;
  ballot[t] = __ballot_sync(0xffffffffu, pred);
  any[t] = __any_sync(0xffffffffu, t == 37);
  all[t] = __all_sync(0xffffffffu, pred);
  all_true[t] = __all_sync(0xffffffffu, t >= 0);
}

// A shuffle that only the first 16 lanes of each warp reach.
__global__ void divergent_shuffle_kernel(float* out) {
  float v = 1.0f;
  if (threadIdx.x % 32 < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

__global__ void atomics_kernel(float* fsum, int* isum, unsigned* usum, int* imax, unsigned* umax, int* cas_winner,
                               int* imin, unsigned* countdown) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  atomicMin(imin, (i * 7919) % 10007 + 3);
  atomicSub(countdown, 3u);
  atomicAdd(fsum, 0.5f);  // exact in float: every partial sum is a multiple of 0.5 below 2^23
  atomicAdd(isum, i);
  atomicAdd(usum, 2u);
  atomicMax(imax, (i * 7919) % 10007);
  atomicMax(umax, static_cast<unsigned>(i));
  atomicCAS(cas_winner, -1, i);  // exactly one thread finds -1
}

// Every block writes its own slice: blocks in parallel must give the serial result exactly.
__global__ void per_block_sum_kernel(float* out, const float* inp, int n) {
  STATIC_SHARED(float, partial, [kBlock]);
  const int t = threadIdx.x;
  float s = 0.0f;
  for (int i = t; i < n; i += kBlock) s += inp[static_cast<long>(blockIdx.x) * n + i];
  partial[t] = s;
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (t < stride) partial[t] += partial[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

// Lanes swap values through shared memory; __syncwarp() orders the writes before the reads.
__global__ void syncwarp_kernel(int* out) {
  STATIC_SHARED(int, slot, [64]);
  const int t = threadIdx.x, lane = t % 32, base = t - lane;
  slot[t] = 1000 + t;
  __syncwarp();
  out[t] = slot[base + 31 - lane];
}

__global__ void dynamic_shared_kernel(float* out, int read_unwritten) {
  DYNAMIC_SHARED(float, buf);
  const int t = threadIdx.x;
  if (t < 16) buf[t] = static_cast<float>(t);
  __syncthreads();
  out[t] = buf[read_unwritten ? t : t % 16];
}

// Static shared arrays (float and int): block 0 writes every slot when fill_block0 is set; in every block threads
// 0..15 write theirs. After the barrier each thread reads slot t (read_all) or slot t % 16, the latter always
// written in this block.
__global__ void static_shared_kernel(float* fout, int* iout, int fill_block0, int read_all) {
  STATIC_SHARED(float, fslot, [64]);
  STATIC_SHARED(int, islot, [64]);
  const int t = threadIdx.x, b = blockIdx.x;
  if ((fill_block0 && b == 0) || t < 16) {
    fslot[t] = static_cast<float>(t);
    islot[t] = 100 + t;
  }
  __syncthreads();
  const int src = read_all ? t : t % 16;
  fout[b * 64 + t] = fslot[src];
  iout[b * 64 + t] = islot[src];
}

std::vector<float> iota_floats(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; i++) v[i] = static_cast<float>(i % 97);  // small integers: every sum is exact in fp32
  return v;
}

}  // namespace

TEST_CASE("kernels/emulation: block reduction with every barrier gives the exact sum") {
  const int blocks = 5;
  const std::vector<float> inp = iota_floats(blocks * kBlock);
  DeviceBuffer<float> d_inp(inp), d_out(blocks);
  tinyds::cuda::block_sum(d_out.get(), d_inp.get(), blocks);
  const std::vector<float> out = d_out.download();
  for (int b = 0; b < blocks; b++) {
    // Integers below 2^24 sum exactly in fp32 in any order.
    const float expected = std::accumulate(inp.begin() + b * kBlock, inp.begin() + (b + 1) * kBlock, 0.0f);
    CHECK(out[b] == expected);
  }
}

TEST_CASE("kernels/emulation: the same reduction missing one barrier gives a wrong sum, every run") {
  // Threads run in order up to their next barrier, so thread 0 always adds partial[128] before thread 128 has
  // stored its input there: it reads the NaN that the static shared array holds at each block's start, and the
  // block's sum is NaN, in every block of every run. (Blocks run serially here, in order; before shared arrays
  // were poisoned, the slot held what the previous block left, which also differs, since the inputs differ.)
  const int blocks = 3;
  std::vector<float> inp = iota_floats(blocks * kBlock);
  for (int b = 0; b < blocks; b++) inp[b * kBlock + 200] += 1000.0f * (b + 1);  // distinct upper halves
  DeviceBuffer<float> d_inp(inp), d_out(blocks);
  tinyds::cuda::emu::set_parallel_blocks(false);
  for (int run = 0; run < 3; run++) {
    tinyds::cuda::block_sum(d_out.get(), d_inp.get(), blocks, /*with_barrier=*/false);
    const std::vector<float> out = d_out.download();
    for (int b = 0; b < blocks; b++) {
      const float expected = std::accumulate(inp.begin() + b * kBlock, inp.begin() + (b + 1) * kBlock, 0.0f);
      CAPTURE(run);
      CAPTURE(b);
      CHECK(out[b] != expected);
    }
  }
  tinyds::cuda::emu::set_parallel_blocks(true);
  // And with the barrier, on the same inputs, every sum is right (the test above, on these inputs).
  tinyds::cuda::block_sum(d_out.get(), d_inp.get(), blocks);
  const std::vector<float> out = d_out.download();
  for (int b = 0; b < blocks; b++)
    CHECK(out[b] == std::accumulate(inp.begin() + b * kBlock, inp.begin() + (b + 1) * kBlock, 0.0f));
}

TEST_CASE("kernels/emulation: the block observer sees every block once, in order, after it finished") {
  // Each block of block_sum writes out[blockIdx.x]; the observer records the block and whether its sum is already
  // in the output (it must be: the observer runs after the block).
  struct Seen {
    std::vector<unsigned> blocks;
    std::vector<bool> written;
    const float* out;
  };
  const int blocks = 4;
  const std::vector<float> inp = iota_floats(blocks * kBlock);
  DeviceBuffer<float> d_inp(inp), d_out(blocks);  // d_out starts as NaN (cudaMalloc's fill)
  Seen seen{{}, {}, d_out.get()};
  tinyds::cuda::emu::set_parallel_blocks(false);
  tinyds::cuda::emu::set_block_observer(
      [](uint3 b, void* user) {
        auto* s = static_cast<Seen*>(user);
        s->blocks.push_back(b.x);
        s->written.push_back(!std::isnan(s->out[b.x]));
      },
      &seen);
  tinyds::cuda::block_sum(d_out.get(), d_inp.get(), blocks);
  tinyds::cuda::emu::set_block_observer(nullptr, nullptr);
  tinyds::cuda::emu::set_parallel_blocks(true);
  CHECK(seen.blocks == std::vector<unsigned>{0, 1, 2, 3});
  CHECK(seen.written == std::vector<bool>(blocks, true));
  // Removed: a later launch calls nothing.
  tinyds::cuda::block_sum(d_out.get(), d_inp.get(), blocks);
  CHECK(seen.blocks.size() == 4);
}

TEST_CASE("kernels/emulation: a barrier that some threads skip by returning is reported") {
  DeviceBuffer<float> d_out(64);
  try {
    launch(divergent_barrier_kernel, dim3(2), dim3(64), 0, d_out.get());
    FAIL("a divergent __syncthreads() was not reported");
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("divergent_barrier_kernel") != std::string::npos);
    // Either block may be the first to fail (blocks run in parallel); both fail the same way.
    CHECK((msg.find("block (0,0,0)") != std::string::npos || msg.find("block (1,0,0)") != std::string::npos));
    CHECK(msg.find("thread (4,0,0) waits at __syncthreads()") != std::string::npos);
    CHECK(msg.find("thread (0,0,0) has exited") != std::string::npos);
    CHECK(msg.find("emulation_test.cpp") != std::string::npos);
  }
}

TEST_CASE("kernels/emulation: threads waiting at two different barriers are reported") {
  DeviceBuffer<float> d_out(64);
  try {
    launch(two_barriers_kernel, dim3(1), dim3(64), 0, d_out.get());
    FAIL("two different __syncthreads() were not reported");
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("two_barriers_kernel") != std::string::npos);
    CHECK(msg.find("thread (0,0,0) waits at __syncthreads()") != std::string::npos);
    CHECK(msg.find("thread (1,0,0) waits at __syncthreads()") != std::string::npos);
  }
}

TEST_CASE("kernels/emulation: a write past the end of a cudaMalloc'd buffer is detected") {
  const int n = 100;
  const long faults_before = tinyds::cuda::emu::guard_faults();
  DeviceBuffer<float> d_out(n);
  try {
    launch(write_past_end_kernel, dim3(1), dim3(128), 0, d_out.get(), n);
    FAIL("the write past the end was not detected");
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("write_past_end_kernel") != std::string::npos);
    CHECK(msg.find("past the end") != std::string::npos);
    CHECK(msg.find("of 400 bytes") != std::string::npos);
  }
  CHECK(tinyds::cuda::emu::guard_faults() == faults_before + 1);
}

TEST_CASE("kernels/emulation: cudaFree and cudaDeviceSynchronize report an overwritten guard") {
  float* p = nullptr;
  REQUIRE(cudaMalloc(&p, 10 * sizeof(float)) == cudaSuccess);
  p[10] = 1.0f;  // host code writing past the end: no launch to catch it, so synchronize must
  CHECK(cudaDeviceSynchronize() == cudaErrorIllegalAddress);
  CHECK(tinyds::cuda::emu::last_error_message().find("past the end") != std::string::npos);
  CHECK(cudaGetLastError() == cudaErrorIllegalAddress);
  CHECK(cudaGetLastError() == cudaSuccess);  // reading the error clears it
  p[-1] = 1.0f;
  CHECK(cudaFree(p) == cudaErrorIllegalAddress);
  CHECK(tinyds::cuda::emu::last_error_message().find("before the start") != std::string::npos);
  cudaGetLastError();
}

TEST_CASE("kernels/emulation: cudaMemcpy outside a buffer and a bad launch configuration are errors") {
  DeviceBuffer<float> d(8);
  std::vector<float> host(16);
  CHECK(cudaMemcpy(host.data(), d.get(), 16 * sizeof(float), cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
  cudaGetLastError();
  CHECK_THROWS_WITH_AS(launch(warp_sum_kernel, dim3(1), dim3(2048), 0, d.get(), d.get()),
                       doctest::Contains("invalid launch configuration"), std::runtime_error);
  CHECK_THROWS_WITH_AS(launch(warp_sum_kernel, dim3(0), dim3(32), 0, d.get(), d.get()),
                       doctest::Contains("warp_sum_kernel"), std::runtime_error);
}

TEST_CASE("kernels/emulation: shuffles follow CUDA's lane rules") {
  const int n = 64;  // two warps
  DeviceBuffer<int> x(n), down(n), up(n), idx(n), width(n);
  launch(shuffle_kernel, dim3(1), dim3(n), 0, x.get(), down.get(), up.get(), idx.get(), width.get());
  const auto hx = x.download(), hdown = down.download(), hup = up.download(), hidx = idx.download(),
             hwidth = width.download();
  for (int t = 0; t < n; t++) {
    const int lane = t % 32, base = t - lane;
    CAPTURE(t);
    CHECK(hx[t] == 100 * (base + (lane ^ 5)));
    CHECK(hdown[t] == 100 * (lane + 3 < 32 ? t + 3 : t));  // lanes past the end keep their own value
    CHECK(hup[t] == 100 * (lane >= 2 ? t - 2 : t));
    CHECK(hidx[t] == 100 * (base + 31 - lane));
    CHECK(hwidth[t] == 100 * (base + lane / 8 * 8 + 1));
  }
}

TEST_CASE("kernels/emulation: a butterfly of xor shuffles gives every lane its warp's sum") {
  const int n = 4 * 96;  // 4 blocks of 3 warps
  const std::vector<float> inp = iota_floats(n);
  DeviceBuffer<float> d_inp(inp), d_out(n);
  launch(warp_sum_kernel, dim3(4), dim3(96), 0, d_out.get(), d_inp.get());
  const std::vector<float> out = d_out.download();
  for (int t = 0; t < n; t++) {
    const int w = t / 32;
    CHECK(out[t] == std::accumulate(inp.begin() + 32 * w, inp.begin() + 32 * w + 32, 0.0f));
  }
}

TEST_CASE("kernels/emulation: ballot, any and all") {
  const int n = 64;
  DeviceBuffer<unsigned> ballot(n);
  DeviceBuffer<int> any(n), all(n), all_true(n);
  launch(vote_kernel, dim3(1), dim3(n), 0, ballot.get(), any.get(), all.get(), all_true.get());
  const auto hb = ballot.download();
  const auto ha = any.download(), hall = all.download(), ht = all_true.download();
  for (int t = 0; t < n; t++) {
    const int base = t - t % 32;
    unsigned expected = 0;
    for (int l = 0; l < 32; l++) expected |= static_cast<unsigned>((base + l) % 3 == 0) << l;
    CAPTURE(t);
    CHECK(hb[t] == expected);
    CHECK(ha[t] == (t >= 32 ? 1 : 0));  // only thread 37, in the second warp, votes yes
    CHECK(hall[t] == 0);
    CHECK(ht[t] == 1);
  }
}

TEST_CASE("kernels/emulation: a shuffle reached by only half a warp is reported") {
  DeviceBuffer<float> d_out(32);
  CHECK_THROWS_WITH_AS(launch(divergent_shuffle_kernel, dim3(1), dim3(32), 0, d_out.get()),
                       doctest::Contains("divergent_shuffle_kernel"), std::runtime_error);
}

TEST_CASE("kernels/emulation: atomics from blocks running in parallel") {
  const int blocks = 64, threads = 128, n = blocks * threads;
  DeviceBuffer<float> fsum(1);
  DeviceBuffer<int> isum(1), imax(1), cas(1);
  DeviceBuffer<unsigned> usum(1), umax(1);
  fsum.upload({0.0f});
  isum.upload({0});
  usum.upload({0u});
  imax.upload({-5});
  umax.upload({0u});
  cas.upload({-1});
  DeviceBuffer<int> imin(std::vector<int>{1 << 30});
  DeviceBuffer<unsigned> countdown(std::vector<unsigned>{3u * n + 1});
  launch(atomics_kernel, dim3(blocks), dim3(threads), 0, fsum.get(), isum.get(), usum.get(), imax.get(), umax.get(),
         cas.get(), imin.get(), countdown.get());
  int expected_max = -5, expected_min = 1 << 30;
  for (int i = 0; i < n; i++) expected_max = std::max(expected_max, (i * 7919) % 10007);
  for (int i = 0; i < n; i++) expected_min = std::min(expected_min, (i * 7919) % 10007 + 3);
  CHECK(imin.download()[0] == expected_min);
  CHECK(countdown.download()[0] == 1u);  // every one of the n subtractions of 3 landed
  CHECK(fsum.download()[0] == 0.5f * n);
  CHECK(isum.download()[0] == n * (n - 1) / 2);
  CHECK(usum.download()[0] == 2u * n);
  CHECK(imax.download()[0] == expected_max);
  CHECK(umax.download()[0] == static_cast<unsigned>(n - 1));
  const int winner = cas.download()[0];
  CHECK(winner >= 0);
  CHECK(winner < n);
}

TEST_CASE("kernels/emulation: blocks in parallel give the serial result bit for bit") {
  const int blocks = 37, n = 1000;
  const std::vector<float> inp = tinyds::test::random_floats(static_cast<size_t>(blocks) * n, 11);
  DeviceBuffer<float> d_inp(inp), d_par(blocks), d_ser(blocks);
  REQUIRE(tinyds::cuda::emu::parallel_blocks());
  launch(per_block_sum_kernel, dim3(blocks), dim3(kBlock), 0, d_par.get(), d_inp.get(), n);
  tinyds::cuda::emu::set_parallel_blocks(false);
  launch(per_block_sum_kernel, dim3(blocks), dim3(kBlock), 0, d_ser.get(), d_inp.get(), n);
  tinyds::cuda::emu::set_parallel_blocks(true);
  CHECK(d_par.download() == d_ser.download());
}

TEST_CASE("kernels/emulation: __syncwarp orders shared-memory writes before reads within a warp") {
  DeviceBuffer<int> d_out(64);
  launch(syncwarp_kernel, dim3(1), dim3(64), 0, d_out.get());
  const std::vector<int> out = d_out.download();
  // Lane 0 runs first and reads lane 31's slot: right only if the barrier made it wait for lane 31's write.
  for (int t = 0; t < 64; t++) CHECK(out[t] == 1000 + (t - t % 32) + 31 - t % 32);
}

TEST_CASE("kernels/emulation: dynamic shared memory is per block and starts as NaN") {
  DeviceBuffer<float> d_out(64);
  launch(dynamic_shared_kernel, dim3(1), dim3(64), 64 * sizeof(float), d_out.get(), 0);
  const std::vector<float> ok = d_out.download();
  for (int t = 0; t < 64; t++) CHECK(ok[t] == static_cast<float>(t % 16));
  launch(dynamic_shared_kernel, dim3(1), dim3(64), 64 * sizeof(float), d_out.get(), 1);
  const std::vector<float> bad = d_out.download();
  for (int t = 16; t < 64; t++) CHECK(std::isnan(bad[t]));  // never written by any thread
}

TEST_CASE("kernels/emulation: static shared arrays start as NaN (float) and -1 (int) in every block") {
  DeviceBuffer<float> d_f(2 * 64);
  DeviceBuffer<int> d_i(2 * 64);
  // Serial blocks: both run on this OS thread and so use the same (per OS thread) arrays, and block 1 runs after
  // block 0 has filled every slot. Without the poisoning block 1 would read block 0's values in slots 16..63.
  tinyds::cuda::emu::set_parallel_blocks(false);
  launch(static_shared_kernel, dim3(2), dim3(64), 0, d_f.get(), d_i.get(), 1, 1);
  const std::vector<float> f = d_f.download();
  const std::vector<int> i = d_i.download();
  for (int t = 0; t < 64; t++) {
    CAPTURE(t);
    CHECK(f[t] == static_cast<float>(t));  // block 0 wrote every slot
    CHECK(i[t] == 100 + t);
    if (t < 16) {
      CHECK(f[64 + t] == static_cast<float>(t));  // written by block 1 itself
      CHECK(i[64 + t] == 100 + t);
    } else {
      CHECK(std::isnan(f[64 + t]));  // never written in block 1: 0xFF bytes
      CHECK(i[64 + t] == -1);
    }
  }
  // A thread reaching the declaration after others have written must not poison their slots again: every thread
  // reads slot t % 16, written by threads 0..15 of its block (threads 16..63 declare the arrays after them).
  launch(static_shared_kernel, dim3(2), dim3(64), 0, d_f.get(), d_i.get(), 0, 0);
  tinyds::cuda::emu::set_parallel_blocks(true);
  const std::vector<float> f2 = d_f.download();
  const std::vector<int> i2 = d_i.download();
  for (int k = 0; k < 2 * 64; k++) {
    CAPTURE(k);
    CHECK(f2[k] == static_cast<float>(k % 16));
    CHECK(i2[k] == 100 + k % 16);
  }
}

#endif  // !TINYDS_CUDA_NATIVE
