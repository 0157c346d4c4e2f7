// tests/device/device_util.h — fixtures of the device parity tests (tests/device/): a nano model and its twin on
// cuda with the same weights, and host copies of device arrays.
//
// Shapes: nano preset (MLA + MoE + MTP, C 32, 2 layers, V 128, max_seq_len 64).
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "tinyds/device/device.h"
#include "tinyds/device/memory.h"
#include "tinyds/model/config.h"
#include "tinyds/model/transformer.h"

namespace tinyds::test {

// The DeepSeek-style nano (the decoder on cuda needs MLA) with init_std 0.2 instead of 0.02, so logits are O(1)
// and far from uniform: greedy choices are not near-ties that the kernels' other summation orders could flip, and
// the router's scores are spread enough that the top-K experts are the same on both paths.
inline ModelConfig device_nano() {
  ModelConfig m = Config::preset("nano").model;
  m.init_std = 0.2f;
  return m;
}

// nano, `steps` SFT steps, no evaluation, no periodic checkpoints: the optimisation alone (the trainer and
// checkpoint parity tests).
inline Config nano_sft(int steps) {
  Config c = Config::preset("nano");
  c.train.steps = steps;
  c.train.eval_problems = 0;
  c.train.seq_len = 64;  // long enough that short level-1 questions leave answer tokens to train on
  c.train.lr = 1e-2f;
  return c;
}

// A model on `device` with `src`'s weights and router biases (copied through the host).
inline void copy_weights(Transformer<float>& dst, const Transformer<float>& src) {
  std::vector<float> w(src.num_params()), bias(src.moe_bias_size());
  src.params_to_host(w.data());
  src.moe_bias_to_host(bias.data());
  dst.params_from_host(w.data());
  dst.moe_bias_from_host(bias.data());
}

// n values of `p`, an array in `device`'s memory, on the host.
template <typename T>
std::vector<T> host_copy(const T* p, std::size_t n, Device device) {
  std::vector<T> out(n);
  OnDevice scope(device);
  dev::to_host(out.data(), p, n);
  return out;
}

// max |a - b| and max |b| over two arrays of the same size.
struct MaxDiff {
  double abs = 0, ref = 0;
  double rel() const { return ref > 0 ? abs / ref : abs; }
};
template <typename T>
MaxDiff max_diff(const std::vector<T>& a, const std::vector<T>& b) {
  MaxDiff d;
  for (std::size_t i = 0; i < a.size() && i < b.size(); i++) {
    d.abs = std::max(d.abs, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    d.ref = std::max(d.ref, std::fabs(static_cast<double>(b[i])));
  }
  return d;
}

}  // namespace tinyds::test
