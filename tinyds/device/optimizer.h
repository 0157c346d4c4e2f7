// tinyds/device/optimizer.h — the optimizer's ops on this thread's current device (tinyds/device/device.h): the CPU
// reference of tinyds/ops/adamw.h or the kernels of kernels/adamw.cu, same names and arguments (the pattern of
// tinyds/device/ops.h). Shapes: n parameters; params, grads, m, v, g (n), all in the current device's memory.
//
//   adamw_update    one AdamW step (Loshchilov & Hutter 2019, Algorithm 2): kernel version 1, elementwise.
//   global_norm     sqrt(sum g^2) returned on the HOST (the trainers log it): kernel version 2, one block summing
//                   in a fixed tree order, so a run gives the same bits every time (version 1's atomicAdd order
//                   varies), as the CPU fixes its chunk order for the same reason. The CPU accumulates in double
//                   and returns the double; the kernel accumulates in double and stores a float (its result lives
//                   in device memory as a float), so the two agree to float rounding, ~6e-8 relative.
//   clip_grad_norm  if norm > max_norm (> 0): g *= max_norm / norm; returns the scale applied (1 when not clipped).
//                   On cuda the norm the host holds is put back into a device scalar for the kernel, which decides
//                   and scales on the device; its scale is read back so the return value is what was applied.
#pragma once

#include <cstddef>
#include <type_traits>

#include "kernels/adamw.cuh"
#include "kernels/device.cuh"
#include "tinyds/device/device.h"
#include "tinyds/device/ops.h"
#include "tinyds/ops/adamw.h"

namespace tinyds::dev {

// Two floats of device memory for the norm and the clip scale, freed at the end of the call. Not ledgered: the
// ledger counts tensors, and these 8 bytes live for one call.
class DeviceScalars {
 public:
  DeviceScalars() : p_(static_cast<float*>(cuda::device_alloc(2 * sizeof(float)))) {}
  ~DeviceScalars() { cuda::device_free(p_); }
  DeviceScalars(const DeviceScalars&) = delete;
  DeviceScalars& operator=(const DeviceScalars&) = delete;
  float* first() { return p_; }
  float* second() { return p_ + 1; }

 private:
  float* p_;
};

// ops/adamw.h adamw_update  <->  kernels/adamw.cu adamw_update (version 0 = 1)
template <typename real>
inline void adamw_update(real* params, const real* grads, real* m, real* v, std::size_t n, float lr, float beta1,
                         float beta2, float eps, float weight_decay, int t) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>()) return cuda::adamw_update(params, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, t);
  }
  tinyds::adamw_update(params, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, t);
}

// ops/adamw.h global_norm  <->  kernels/adamw.cu global_norm version 2, the norm copied to the host.
template <typename real>
inline double global_norm(const real* g, std::size_t n) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>()) {
      DeviceScalars d;
      cuda::global_norm(d.first(), g, n, 2);
      float norm = 0.0f;
      cuda::copy_to_host(&norm, d.first(), sizeof(float));
      return norm;
    }
  }
  return tinyds::global_norm(g, n);
}

// ops/adamw.h clip_grad_norm  <->  kernels/adamw.cu clip_grad_norm (version 0 = 1).
template <typename real>
inline double clip_grad_norm(real* g, std::size_t n, double norm, double max_norm) {
  if constexpr (std::is_same_v<real, float>) {
    if (on_cuda<real>()) {
      DeviceScalars d;
      // The norm came from global_norm above as a float, so this conversion is exact on the cuda path.
      const float norm_f = static_cast<float>(norm);
      cuda::copy_to_device(d.first(), &norm_f, sizeof(float));
      cuda::clip_grad_norm(g, n, d.first(), static_cast<float>(max_norm), d.second());
      float scale = 1.0f;
      cuda::copy_to_host(&scale, d.second(), sizeof(float));
      return scale;
    }
  }
  return tinyds::clip_grad_norm(g, n, norm, max_norm);
}

}  // namespace tinyds::dev
