// tinyds/train/schedule.h — learning-rate schedule: linear warmup, then cosine decay to a floor.
//
//   step < warmup:   lr * (step + 1) / warmup
//   otherwise:       min_lr + 0.5 (lr - min_lr) (1 + cos(pi * progress)),  progress = (step - warmup) / (total - warmup)
// (SGDR, Loshchilov & Hutter 2017, without restarts). step is 0-based; progress is clamped to [0, 1].
#pragma once

namespace tinyds {

double lr_at(int step, double lr, double min_lr, int warmup, int total);

}  // namespace tinyds
