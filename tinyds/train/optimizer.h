// tinyds/train/optimizer.h — AdamW over a whole model's parameter array.
//
// The moments m and v are two ledgered allocations of the same layout as the parameters (categories adam_m,
// adam_v). Weight decay applies to the tensors the layout marks `decay` (matrices), never to norm gains.
// The per-element update is tinyds/ops/adamw.h.
#pragma once
#include <cstddef>

#include "tinyds/core/ledger.h"
#include "tinyds/model/params.h"

namespace tinyds {

struct AdamWSettings {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};

class AdamW {
 public:
  AdamW(const ParamLayout& layout, Role role);
  // One step: t advances by one, then every tensor is updated with its decay setting.
  void step(float* params, const float* grads, const AdamWSettings& s);
  int t() const { return t_; }
  void set_t(int t) { t_ = t; }
  float* m() { return m_.data(); }
  float* v() { return v_.data(); }
  std::size_t size() const { return m_.size(); }

 private:
  const ParamLayout& layout_;
  Buffer<float> m_, v_;
  int t_ = 0;
};

}  // namespace tinyds
