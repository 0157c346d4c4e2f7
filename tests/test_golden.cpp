// tests/test_golden.cpp — tinyds against the independent PyTorch twin (tests/reference/).
//
// Flow (CMake fixture "golden"): `tinyds init --preset nano --seed 7` writes nano_init.safetensors; the PyTorch
// twin loads it, runs a fixed batch and writes nano_golden.safetensors with the inputs, logits, loss, every
// parameter gradient, the losses of 10 AdamW steps (grad clip included) and the parameters after them. This test
// loads the same checkpoint and compares each quantity, printing the max error per tensor.
//
// Tolerances (both sides float32, same math, different operation order):
//  - logits, loss, gradients: max |tinyds - torch| <= 1e-4 * max |torch| of that tensor (+1e-7 for all-zero
//    tensors). float32 has a 6e-8 unit roundoff; a reduction over C = 32..64 terms and a few layers accumulates
//    ~1e-6 relative; 1e-4 leaves two orders of margin while any wrong term (a missing residual, a transposed
//    weight, an off-by-one in RoPE) produces errors of order 1e-1 to 1e0 relative.
//  - 10 AdamW losses: relative 1e-4 each (they depend on 10 rounds of the above).
//  - parameters after 10 steps: max |diff| <= 2e-4 absolute (lr 1e-2 x 10 steps = 0.1 of total movement; Adam's
//    normalised update amplifies gradient rounding only for elements whose gradient is ~0, bounded by this).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tinyds/model/transformer.h"
#include "tinyds/ops/adamw.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/optimizer.h"
#include "tinyds/train/safetensors.h"

using namespace tinyds;

namespace {

std::string golden_dir() {
  const char* d = std::getenv("TINYDS_GOLDEN_DIR");
  REQUIRE_MESSAGE(d != nullptr, "TINYDS_GOLDEN_DIR is not set: run through ctest (golden_parity)");
  return d;
}

// max |a - b| / max |b|: the error relative to the tensor's own scale (tiny gradients are judged as strictly).
double scaled_max_error(const float* a, const std::vector<float>& b) {
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < b.size(); i++) {
    err = std::max(err, static_cast<double>(std::fabs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
  }
  return err / std::max(scale, 1e-12);  // relative to this tensor's own largest entry
}

double meta_num(const SafeTensors& g, const std::string& key) {
  auto it = g.metadata.find(key);
  REQUIRE_MESSAGE(it != g.metadata.end(), "golden file lacks metadata " << key);
  return std::stod(it->second);
}

}  // namespace

// Compares tinyds with the golden state DIR/<name>_golden.safetensors made from DIR/<name>_init.safetensors.
void compare_with_golden(const std::string& name) {
  const std::string dir = golden_dir();
  LoadedCheckpoint ck = load_checkpoint(dir + "/" + name + "_init.safetensors");
  SafeTensors g = read_safetensors(dir + "/" + name + "_golden.safetensors");
  std::printf("golden: %s (%s attention)\n", name.c_str(), attention_kind_name(ck.config.model.attention));
  const int B = static_cast<int>(meta_num(g, "batch")), T = static_cast<int>(meta_num(g, "seq"));
  const int V = ck.config.model.vocab_size;
  std::vector<int32_t> inputs = g.get_i32("inputs", {B, T}, "golden");
  std::vector<int32_t> targets = g.get_i32("targets", {B, T}, "golden");

  Transformer<float> model(ck.config.model);
  load_params_into(ck, model);
  model.zero_grad();
  double loss = model.forward(inputs.data(), targets.data(), B, T);
  model.backward();

  double ref_loss = g.get_f32("loss", {1}, "golden")[0];
  double logit_err = scaled_max_error(model.logits(), g.get_f32("logits", {B, T, V}, "golden"));
  std::printf("golden: loss tinyds %.7f torch %.7f | logits scaled max error %.2e\n", loss, ref_loss, logit_err);
  CHECK(std::fabs(loss - ref_loss) <= 1e-4 * std::fabs(ref_loss));
  CHECK(logit_err <= 1e-4);
  for (const TensorSpec& t : model.layout().tensors()) {
    double e = scaled_max_error(model.grads() + t.offset, g.get_f32("grad." + t.name, t.shape, "golden"));
    std::printf("golden: grad %-22s scaled max error %.2e\n", t.name.c_str(), e);
    CHECK_MESSAGE(e <= 1e-4, "gradient of " << t.name);
  }

  // 10 AdamW steps on the same batch: zero grads, forward, backward, clip, update (constant lr).
  AdamWSettings s{static_cast<float>(meta_num(g, "lr")), static_cast<float>(meta_num(g, "beta1")),
                  static_cast<float>(meta_num(g, "beta2")), static_cast<float>(meta_num(g, "eps")),
                  static_cast<float>(meta_num(g, "weight_decay"))};
  const double clip = meta_num(g, "grad_clip");
  std::vector<float> ref_losses = g.get_f32("adamw_losses", {10}, "golden");
  load_params_into(ck, model);
  AdamW adam(model.layout(), Role::policy);
  for (int step = 0; step < 10; step++) {
    model.zero_grad();
    double l = model.forward(inputs.data(), targets.data(), B, T);
    model.backward();
    double norm = global_norm(model.grads(), model.num_params());
    clip_grad_norm(model.grads(), model.num_params(), norm, clip);
    adam.step(model.params(), model.grads(), s);
    std::printf("golden: AdamW step %2d loss tinyds %.7f torch %.7f\n", step + 1, l, ref_losses[step]);
    CHECK(std::fabs(l - ref_losses[step]) <= 1e-4 * std::fabs(ref_losses[step]));
  }
  double worst = 0;
  for (const TensorSpec& t : model.layout().tensors()) {
    std::vector<float> ref = g.get_f32("final." + t.name, t.shape, "golden");
    for (std::size_t i = 0; i < ref.size(); i++)
      worst = std::max(worst, static_cast<double>(std::fabs(model.params()[t.offset + i] - ref[i])));
  }
  std::printf("golden: parameters after 10 AdamW steps, max abs difference %.2e\n", worst);
  CHECK(worst <= 2e-4);
}


TEST_SUITE("golden") {

TEST_CASE("golden/nano dense model (gqa) matches the PyTorch reference") { compare_with_golden("nano"); }

TEST_CASE("golden/nano model with Multi-head Latent Attention matches the PyTorch reference") {
  compare_with_golden("nano_mla");
}

}  // TEST_SUITE
