// tinyds/posttrain/frozen.cpp — micro-batched forward passes of frozen models (see frozen.h).
#include "tinyds/posttrain/frozen.h"

#include <algorithm>

#include "tinyds/core/error.h"
#include "tinyds/device/losses.h"

namespace tinyds {

void frozen_logprobs(float* lp, Transformer<float>& model, const int* inputs, const int* targets, int B, int T,
                     float tau, int rows) {
  if (rows < 1) throw_error("frozen_logprobs: rows = ", rows, ", need at least 1");
  const int V = model.config().vocab_size;
  OnDevice scope(model.device());  // the log-probs run where the logits are
  for (int b0 = 0; b0 < B; b0 += rows) {
    const int R = std::min(rows, B - b0);
    const long off = static_cast<long>(b0) * T;
    model.forward(inputs + off, nullptr, R, T);  // logits only (no targets: no loss, no MTP)
    dev::logprobs_forward(lp + off, model.logits(), targets + off, R * T, V, tau);
  }
}

void frozen_values(float* values, Critic<float>& model, const int* inputs, int B, int T, int rows) {
  if (rows < 1) throw_error("frozen_values: rows = ", rows, ", need at least 1");
  for (int b0 = 0; b0 < B; b0 += rows) {
    const int R = std::min(rows, B - b0);
    const long off = static_cast<long>(b0) * T;
    const float* v = model.forward(inputs + off, R, T);  // (R, T)
    std::copy(v, v + static_cast<long>(R) * T, values + off);
  }
}

}  // namespace tinyds
