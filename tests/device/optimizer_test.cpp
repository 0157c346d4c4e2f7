// tests/device/optimizer_test.cpp — AdamW (train/optimizer.h) and the global grad-norm clip (device/optimizer.h)
// on cuda (the CUDA emulation) against the CPU, on the same parameters and gradients.
//
// Shapes: P = the nano preset's parameter count (ParamLayout), every array (P).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "tests/util/float_util.h"
#include "tinyds/core/rng.h"
#include "tinyds/device/memory.h"
#include "tinyds/device/optimizer.h"
#include "tinyds/model/config.h"
#include "tinyds/train/optimizer.h"

using namespace tinyds;

namespace {

// (n) normal draws times `scale`, from stream `stream` of seed 7.
std::vector<float> normals(std::size_t n, uint64_t stream, float scale) {
  Rng rng(7, stream);
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; i++) x[i] = scale * rng.normal_at(i);
  return x;
}

// A device copy of host (n): Place::device, filled through dev::from_host on cuda.
Buffer<float> to_device(const std::vector<float>& host) {
  Buffer<float> d(host.size(), Role::policy, Category::weights, Place::device);
  OnDevice scope(Device::cuda);
  dev::from_host(d.data(), host.data(), host.size());
  return d;
}

std::vector<float> to_host(const Buffer<float>& d) {
  std::vector<float> h(d.size());
  OnDevice scope(Device::cuda);
  dev::to_host(h.data(), d.data(), d.size());
  return h;
}

// max_i |a[i] - b[i]| / (1 + |b[i]|)
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); i++)
    m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]) / (1.0 + std::fabs(b[i])));
  return m;
}

}  // namespace

TEST_CASE("device/optimizer: AdamW on cuda matches the CPU on every parameter and moment") {
  const ParamLayout layout(Config::preset("nano").model);
  const std::size_t P = layout.total();
  std::vector<float> p_cpu = normals(P, 1, 0.5f);
  Buffer<float> p_dev = to_device(p_cpu);
  AdamW cpu(layout, Role::policy, Device::cpu), cuda(layout, Role::policy, Device::cuda);
  CHECK(cuda.device() == Device::cuda);
  // lr 1e-2 with weight decay 0.1: the decayed tensors (matrices) and the others (norm gains) take different updates,
  // so a step that applied one decay setting to every tensor would differ by lr * 0.1 * |p| ~ 5e-4 (>> the tolerance).
  const AdamWSettings s{1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f};
  const int steps = 3;  // t = 1, 2, 3: the bias corrections change between steps
  for (int t = 0; t < steps; t++) {
    const std::vector<float> g = normals(P, 10 + t, 1e-2f);
    Buffer<float> g_dev = to_device(g);
    cpu.step(p_cpu.data(), g.data(), s);
    cuda.step(p_dev.data(), g_dev.data(), s);
  }
  CHECK(cuda.t() == steps);
  std::vector<float> m_dev(P), v_dev(P);
  cuda.moments_to_host(m_dev.data(), v_dev.data());
  std::vector<float> m_cpu(P), v_cpu(P);
  cpu.moments_to_host(m_cpu.data(), v_cpu.data());
  const double dp = max_rel_diff(to_host(p_dev), p_cpu), dm = max_rel_diff(m_dev, m_cpu), dv = max_rel_diff(v_dev, v_cpu);
  std::printf("device/optimizer: AdamW %zu parameters, %d steps: max |diff|/(1+|ref|) params %.3g, m %.3g, v %.3g\n",
              P, steps, dp, dm, dv);
  // The kernel evaluates the CPU loop's float expression in the same order; sqrtf and division are correctly
  // rounded, so only an fma contraction (nvcc's default on a GPU; none under the emulation) can change a bit: a
  // few ulp (2^-24 ~ 6e-8 relative) per step of values |p| < 3, |m|, v < 1, over 3 steps: 1e-6 covers 16 ulp.
  CHECK(dp <= 1e-6);
  CHECK(dm <= 1e-6);
  CHECK(dv <= 1e-6);
}

TEST_CASE("device/optimizer: the global norm and clip on cuda match the CPU, and the norm is the same every run") {
  const std::size_t P = ParamLayout(Config::preset("nano").model).total();
  const std::vector<float> g = normals(P, 3, 1e-2f);
  Buffer<float> g_dev = to_device(g);
  const double norm_cpu = global_norm(g.data(), P);
  double norm_dev = 0, again = 0, scale = 0;
  {
    OnDevice scope(Device::cuda);
    norm_dev = dev::global_norm(g_dev.data(), P);
    again = dev::global_norm(g_dev.data(), P);
  }
  std::printf("device/optimizer: global norm cpu %.9g cuda %.9g (relative diff %.3g)\n", norm_cpu, norm_dev,
              std::fabs(norm_dev - norm_cpu) / norm_cpu);
  // Both sum the squares in double (in different orders: ~1e-16 relative); the kernel stores the result as a float:
  // one rounding, at most 2^-24 ~ 6e-8 relative.
  CHECK(std::fabs(norm_dev - norm_cpu) <= 6e-8 * norm_cpu);
  CHECK(again == norm_dev);  // version 2 sums in a fixed tree order: the same bits on every call

  // Clipped to half the norm: every element scaled by max_norm / norm.
  std::vector<float> g_cpu = g;
  const double max_norm = 0.5 * norm_cpu;
  const double scale_cpu = clip_grad_norm(g_cpu.data(), P, norm_cpu, max_norm);
  {
    OnDevice scope(Device::cuda);
    scale = dev::clip_grad_norm(g_dev.data(), P, norm_dev, max_norm);
  }
  const std::vector<float> g_clipped = to_host(g_dev);
  std::printf("device/optimizer: clip scale cpu %.9g cuda %.9g, max |diff| of g %.3g (max |g| %.3g)\n", scale_cpu,
              scale, test::max_diff(g_clipped.data(), g_cpu.data(), P), test::max_abs(g_cpu.data(), P));
  // The CPU's scale is exactly 0.5 and g * 0.5 is exact. The kernel's: its norm and max_norm are each the double
  // rounded to float (2^-24 relative each) and the ratio is rounded to float once more: 3 * 2^-24 = 1.8e-7 relative;
  // g * scale adds one rounding: 4 * 2^-24 = 2.4e-7 relative per element.
  CHECK(std::fabs(scale - scale_cpu) <= 1.8e-7 * scale_cpu);
  for (std::size_t i = 0; i < P; i++)
    if (!(std::fabs(g_clipped[i] - g_cpu[i]) <= 2.4e-7 * std::fabs(g_cpu[i]))) {
      FAIL_CHECK("element ", i, ": cuda ", g_clipped[i], " cpu ", g_cpu[i]);
      break;
    }

  // Above the norm: nothing is clipped, the scale is exactly 1 and g keeps its bits.
  {
    OnDevice scope(Device::cuda);
    scale = dev::clip_grad_norm(g_dev.data(), P, norm_dev, 4.0 * norm_dev);
  }
  CHECK(scale == 1.0);
  CHECK(to_host(g_dev) == g_clipped);
}
