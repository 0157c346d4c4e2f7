// tinyds/python/kernels.cpp — tinyds.kernels: the CUDA kernels of kernels/*.cu run on numpy arrays through the CPU
// emulation of CUDA (kernels/emulation/), and tinyds.ops: the CPU ops they are checked against (tinyds/ops/).
//
// Shapes: N rows, IC input width, OC output width, C width, B blocks, n elements. Every array is float32.
// A call uploads its inputs into cudaMalloc'd buffers (host memory with guard bytes under the emulation), launches
// the kernel `version` as the kernel tests do (tests/kernels/), downloads the outputs and frees the buffers. Nothing
// is explained here: notebooks/src/08_cuda_kernels.py is the explanation.
#include <pybind11/stl.h>

#include <cmath>
#include <vector>

#include "kernels/block_sum.cuh"
#include "kernels/common.cuh"
#include "kernels/matmul.cuh"
#include "kernels/rmsnorm.cuh"
#include "kernels/swiglu.cuh"
#include "tinyds/ops/matmul.h"
#include "tinyds/ops/rmsnorm.h"
#include "tinyds/ops/swiglu.h"
#include "tinyds/python/arrays.h"
#include "tinyds/python/module.h"

namespace tinyds::python {

namespace {

// A cudaMalloc'd float array of n elements, optionally uploaded from host memory; freed when it goes out of scope.
class DeviceArray {
 public:
  explicit DeviceArray(std::size_t n, const float* host = nullptr) : n_(n) {
    CUDA_CHECK(cudaMalloc(&p_, (n ? n : 1) * sizeof(float)));
    if (host) CUDA_CHECK(cudaMemcpy(p_, host, n * sizeof(float), cudaMemcpyHostToDevice));
  }
  ~DeviceArray() { cudaFree(p_); }  // a guard fault was already reported by the launch that wrote past the end
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  float* get() const { return p_; }
  py::array_t<float> download(const std::vector<py::ssize_t>& shape) const {
    py::array_t<float> out(shape);
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(out.mutable_data(), p_, n_ * sizeof(float), cudaMemcpyDeviceToHost));
    return out;
  }

 private:
  float* p_ = nullptr;
  std::size_t n_;
};

// The (rows, cols) of a 2-D array, naming the argument when it is not 2-D.
std::pair<int, int> dims2(const In<float>& a, const char* name) {
  if (a.ndim() != 2) throw_error(name, ": expected a 2-D array, got ", a.ndim(), " dimensions");
  return {static_cast<int>(a.shape(0)), static_cast<int>(a.shape(1))};
}

// Turns the emulation's parallel blocks off for a scope (traces and the race demonstration need block order).
struct SerialBlocks {
  bool was = cuda::emu::parallel_blocks();
  explicit SerialBlocks(bool serial) { if (serial) cuda::emu::set_parallel_blocks(false); }
  ~SerialBlocks() { cuda::emu::set_parallel_blocks(was); }
};

// Per-block trace of one launch: which block first made each output element finite. The output buffer starts as
// NaN (cudaMalloc's fill under the emulation), so an element a block wrote is one that stopped being NaN.
struct WriteTrace {
  const float* out;
  std::size_t n;
  std::vector<int> writer;  // (n) linear block index (x fastest), -1 while unwritten
  int grid_x = 0, grid_y = 0;
  static void observe(uint3 b, void* self) {
    auto* t = static_cast<WriteTrace*>(self);
    const int id = static_cast<int>(b.x) + t->grid_x * static_cast<int>(b.y);
    for (std::size_t i = 0; i < t->n; i++)
      if (t->writer[i] < 0 && !std::isnan(t->out[i])) t->writer[i] = id;
  }
};

py::array_t<float> matmul_kernel(const In<float>& inp, const In<float>& weight, const std::optional<In<float>>& bias,
                                 int version) {
  const auto [N, IC] = dims2(inp, "inp");
  const auto [OC, IC_w] = dims2(weight, "weight");
  if (IC_w != IC) throw_error("weight: expected (OC, IC = ", IC, "), got (", OC, ", ", IC_w, ")");
  DeviceArray d_out(static_cast<std::size_t>(N) * OC), d_inp(inp.size(), inp.data()),
      d_w(weight.size(), weight.data());
  std::optional<DeviceArray> d_b;
  if (bias) d_b.emplace(OC, checked(*bias, OC, "bias"));
  cuda::matmul_forward(d_out.get(), d_inp.get(), d_w.get(), d_b ? d_b->get() : nullptr, N, IC, OC, version);
  return d_out.download({N, OC});
}

}  // namespace

void bind_kernels(py::module_& m) {
  py::module_ k = m.def_submodule(
      "kernels", "CUDA kernels (kernels/*.cu) run on numpy float32 arrays under the CPU emulation of CUDA.");
  k.def("matmul", &matmul_kernel, py::arg("inp"), py::arg("weight"), py::arg("bias") = std::nullopt,
        py::arg("version") = 0,
        "out (N, OC) = inp (N, IC) @ weight (OC, IC)^T + bias (OC); kernels/matmul.cu version 1 naive, 2 "
        "shared-memory 16x16 tiles, 3 (= 0) 64x64 register-blocked tiles");
  k.def(
      "matmul_trace",
      [](const In<float>& inp, const In<float>& weight, int version) {
        const auto [N, IC] = dims2(inp, "inp");
        const auto [OC, IC_w] = dims2(weight, "weight");
        if (IC_w != IC) throw_error("weight: expected (OC, IC = ", IC, "), got (", OC, ", ", IC_w, ")");
        DeviceArray d_out(static_cast<std::size_t>(N) * OC), d_inp(inp.size(), inp.data()),
            d_w(weight.size(), weight.data());
        CUDA_CHECK(cudaMemset(d_out.get(), 0xFF, static_cast<std::size_t>(N) * OC * sizeof(float)));  // NaN
        const int tile = version == 1 || version == 2 ? 16 : 64;  // matmul.cu: kTile, kBlockTile
        WriteTrace t{d_out.get(), static_cast<std::size_t>(N) * OC,
                     std::vector<int>(static_cast<std::size_t>(N) * OC, -1), (OC + tile - 1) / tile,
                     (N + tile - 1) / tile};
        SerialBlocks serial(true);
        cuda::emu::set_block_observer(&WriteTrace::observe, &t);
        try {
          cuda::matmul_forward(d_out.get(), d_inp.get(), d_w.get(), nullptr, N, IC, OC, version);
        } catch (...) {
          cuda::emu::set_block_observer(nullptr, nullptr);
          throw;
        }
        cuda::emu::set_block_observer(nullptr, nullptr);
        py::dict d;
        d["out"] = d_out.download({N, OC});
        d["block"] = copy(t.writer.data(), {N, OC});
        d["grid"] = py::make_tuple(t.grid_x, t.grid_y);
        return d;
      },
      py::arg("inp"), py::arg("weight"), py::arg("version") = 2,
      "matmul(inp, weight) with blocks run one at a time in order: {out (N, OC), block (N, OC) the linear index "
      "blockIdx.x + grid_x * blockIdx.y of the block that wrote each element, grid (grid_x, grid_y)}");
  k.def(
      "block_sum",
      [](const In<float>& inp, bool with_barrier, bool parallel_blocks) {
        const auto [B, n] = dims2(inp, "inp");
        if (n != cuda::kBlockSumThreads)
          throw_error("inp: expected (B, ", cuda::kBlockSumThreads, "), got (", B, ", ", n, ")");
        DeviceArray d_out(B), d_inp(inp.size(), inp.data());
        SerialBlocks serial(!parallel_blocks);
        cuda::block_sum(d_out.get(), d_inp.get(), B, with_barrier);
        return d_out.download({B});
      },
      py::arg("inp"), py::arg("with_barrier") = true, py::arg("parallel_blocks") = false,
      "out (B) = row sums of inp (B, 256), one block per row (kernels/block_sum.cu); with_barrier=False drops the "
      "barrier after the loads (a data race); parallel_blocks runs blocks on OpenMP threads");
  k.def(
      "rmsnorm",
      [](const In<float>& inp, const In<float>& weight, float eps, int version) {
        const auto [N, C] = dims2(inp, "inp");
        DeviceArray d_out(inp.size()), d_rstd(N), d_inp(inp.size(), inp.data()), d_w(C, checked(weight, C, "weight"));
        cuda::rmsnorm_forward(d_out.get(), d_rstd.get(), d_inp.get(), d_w.get(), N, C, eps, version);
        return py::make_tuple(d_out.download({N, C}), d_rstd.download({N}));
      },
      py::arg("inp"), py::arg("weight"), py::arg("eps") = 1e-5f, py::arg("version") = 0,
      "(out (N, C), rstd (N)) of RMSNorm (kernels/rmsnorm.cu): version 1 thread per row, 2 block per row, 3 (= 0) "
      "warp per row");
  k.def(
      "swiglu",
      [](const In<float>& a, const In<float>& b, int version) {
        const std::size_t n = a.size();
        DeviceArray d_out(n), d_a(n, a.data()), d_b(n, checked(b, n, "b"));
        cuda::swiglu_forward(d_out.get(), d_a.get(), d_b.get(), static_cast<long>(n), version);
        return d_out.download({static_cast<py::ssize_t>(n)});
      },
      py::arg("a"), py::arg("b"), py::arg("version") = 0, "out (n) = silu(a) * b (kernels/swiglu.cu), flattened");

  py::module_ o = m.def_submodule("ops", "The CPU ops of tinyds/ops/ (float32) that the kernels are checked against.");
  o.def(
      "matmul",
      [](const In<float>& inp, const In<float>& weight) {
        const auto [N, IC] = dims2(inp, "inp");
        const auto [OC, IC_w] = dims2(weight, "weight");
        if (IC_w != IC) throw_error("weight: expected (OC, IC = ", IC, "), got (", OC, ", ", IC_w, ")");
        py::array_t<float> out({N, OC});
        matmul_forward(out.mutable_data(), inp.data(), weight.data(), N, IC, OC);
        return out;
      },
      py::arg("inp"), py::arg("weight"), "out (N, OC) = inp (N, IC) @ weight (OC, IC)^T (tinyds/ops/matmul.h)");
  o.def(
      "rmsnorm",
      [](const In<float>& inp, const In<float>& weight, float eps) {
        const auto [N, C] = dims2(inp, "inp");
        py::array_t<float> out({N, C}), rstd(N);
        rmsnorm_forward(out.mutable_data(), rstd.mutable_data(), inp.data(), checked(weight, C, "weight"), N, C, eps);
        return py::make_tuple(out, rstd);
      },
      py::arg("inp"), py::arg("weight"), py::arg("eps") = 1e-5f, "(out (N, C), rstd (N)) (tinyds/ops/rmsnorm.h)");
  o.def(
      "swiglu",
      [](const In<float>& a, const In<float>& b) {
        const std::size_t n = a.size();
        py::array_t<float> out(static_cast<py::ssize_t>(n));
        swiglu_forward(out.mutable_data(), a.data(), checked(b, n, "b"), static_cast<long>(n));
        return out;
      },
      py::arg("a"), py::arg("b"), "out (n) = silu(a) * b (tinyds/ops/swiglu.h), flattened");
}

}  // namespace tinyds::python
