// tinyds/train/schedule.cpp — see schedule.h.
#include "tinyds/train/schedule.h"

#include <algorithm>
#include <cmath>

namespace tinyds {

double lr_at(int step, double lr, double min_lr, int warmup, int total) {
  if (step < warmup) return lr * (step + 1) / warmup;
  if (total <= warmup) return min_lr;
  double progress = std::clamp(static_cast<double>(step - warmup) / (total - warmup), 0.0, 1.0);
  return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

}  // namespace tinyds
