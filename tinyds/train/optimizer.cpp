// tinyds/train/optimizer.cpp — see optimizer.h.
#include "tinyds/train/optimizer.h"

#include "tinyds/device/memory.h"
#include "tinyds/device/optimizer.h"

namespace tinyds {

AdamW::AdamW(const ParamLayout& layout, Role role, Device device)
    : layout_(layout),
      device_(device),
      m_(layout.total(), role, Category::adam_m, dev::place_of(device)),
      v_(layout.total(), role, Category::adam_v, dev::place_of(device)) {}

void AdamW::step(float* params, const float* grads, const AdamWSettings& s) {
  OnDevice scope(device_);
  t_++;
  for (const TensorSpec& t : layout_.tensors())
    dev::adamw_update(params + t.offset, grads + t.offset, m_.data() + t.offset, v_.data() + t.offset, t.numel, s.lr,
                      s.beta1, s.beta2, s.eps, t.decay ? s.weight_decay : 0.0f, t_);
}

void AdamW::moments_to_host(float* m, float* v) const {
  OnDevice scope(device_);
  dev::to_host(m, m_.data(), m_.size());
  dev::to_host(v, v_.data(), v_.size());
}

void AdamW::moments_from_host(const float* m, const float* v) {
  OnDevice scope(device_);
  dev::from_host(m_.data(), m, m_.size());
  dev::from_host(v_.data(), v, v_.size());
}

}  // namespace tinyds
