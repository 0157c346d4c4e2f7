// tinyds/train/optimizer.h — AdamW over a whole model's parameter array.
//
// The moments m and v are two ledgered allocations of the same layout as the parameters (categories adam_m,
// adam_v), in the model's place: host memory for a cpu model, device memory for a cuda one (tinyds/device/device.h).
// Weight decay applies to the tensors the layout marks `decay` (matrices), never to norm gains.
// The per-element update is tinyds/ops/adamw.h on the CPU, kernels/adamw.cu on cuda (dispatched by
// tinyds/device/optimizer.h).
#pragma once
#include <cstddef>

#include "tinyds/core/ledger.h"
#include "tinyds/device/device.h"
#include "tinyds/model/params.h"

namespace tinyds {

struct AdamWSettings {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};

class AdamW {
 public:
  // device: where the moments live and the update runs; the model's device (params and grads live there too).
  AdamW(const ParamLayout& layout, Role role, Device device = Device::cpu);
  // One step: t advances by one, then every tensor is updated with its decay setting.
  // params, grads (layout.total()) in the optimizer's place.
  void step(float* params, const float* grads, const AdamWSettings& s);
  int t() const { return t_; }
  void set_t(int t) { t_ = t; }
  Device device() const { return device_; }
  float* m() { return m_.data(); }  // (layout.total()) in the optimizer's place: device memory on cuda
  float* v() { return v_.data(); }
  std::size_t size() const { return m_.size(); }
  // Host copies of the moments, layout.total() floats each (checkpoints; the host never reads m() on cuda).
  void moments_to_host(float* m, float* v) const;
  void moments_from_host(const float* m, const float* v);

 private:
  const ParamLayout& layout_;
  Device device_;
  Buffer<float> m_, v_;
  int t_ = 0;
};

}  // namespace tinyds
