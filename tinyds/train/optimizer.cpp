// tinyds/train/optimizer.cpp — see optimizer.h.
#include "tinyds/train/optimizer.h"

#include "tinyds/ops/adamw.h"

namespace tinyds {

AdamW::AdamW(const ParamLayout& layout, Role role)
    : layout_(layout), m_(layout.total(), role, Category::adam_m), v_(layout.total(), role, Category::adam_v) {}

void AdamW::step(float* params, const float* grads, const AdamWSettings& s) {
  t_++;
  for (const TensorSpec& t : layout_.tensors())
    adamw_update(params + t.offset, grads + t.offset, m_.data() + t.offset, v_.data() + t.offset, t.numel, s.lr,
                 s.beta1, s.beta2, s.eps, t.decay ? s.weight_decay : 0.0f, t_);
}

}  // namespace tinyds
