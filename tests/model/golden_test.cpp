// tests/model/golden_test.cpp — tinyds against the independent PyTorch twin (tests/reference/).
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
//
// MoE + MTP (nano_ds: MLA, layer 1 and the one MTP block MoE with E 4, K 2, balance bias+seqaux): the same
// tolerances as MLA, for the TOTAL objective (main + MTP + balance), its gradients, the 10 losses and the final
// parameters; the golden file also holds the objective's parts and the MoE biases after the 10 steps' bias updates.
//  - main / mtp / balance losses: relative 1e-4 each (float32 vs float64 twin: ~6e-8).
//  - Routing must agree exactly, or losses jump: the twin records the smallest margin between the K-th and the
//    (K+1)-th biased score of any token (min_topk_gap at the golden forward, min_topk_gap_steps over the 10 steps'
//    forwards); it must exceed 1e-5. Scores are in (0, 1) with float32 rounding ~6e-8, and after 10 steps the
//    two sides' parameters differ by ~1e-5 at most, moving scores by ~1e-6: a margin above 1e-5 cannot flip.
//    (On make_random_ckpt weights: 8e-4 and 1.3e-4.)
//  - Biases after 10 steps: max |diff| <= 1e-6. Each step adds exactly +-gamma or 0 (gamma 0.01) in float32 on
//    both sides, so equal loads give equal biases to rounding; one differing sign is an error of 1e-2.
//  - float32 vs float64 twin on this batch: gradients ~9e-7 of each tensor's max, 10 losses ~1.4e-7, final
//    parameters ~9e-6 absolute: well inside the MLA tolerances above.
//  - golden.py's AdamW decays every tensor of >= 2 dims: the matrices and the (E, ., .) expert stacks (tinyds's
//    layout must mark those decay = true); 1-D norm gains are not decayed.
#include <doctest/doctest.h>

#include <algorithm>
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

// The parts of the objective of the last forward (models with MoE layers or MTP modules; golden.py writes them only
// for those): main, MTP and balance losses, each relative 1e-4 (+1e-7 for a zero part).
void check_loss_parts(Transformer<float>& model, const SafeTensors& g) {
  const char* names[3] = {"main_loss", "mtp_loss", "balance_loss"};
  const double ours[3] = {model.main_loss(), model.mtp_loss(), model.balance_loss()};
  for (int i = 0; i < 3; i++) {
    const double ref = g.get_f32(names[i], {1}, "golden")[0];
    std::printf("golden: %-12s tinyds %.7f torch %.7f\n", names[i], ours[i], ref);
    CHECK_MESSAGE(std::fabs(ours[i] - ref) <= 1e-4 * std::fabs(ref) + 1e-7, names[i]);
  }
  // The top-K choice is discontinuous: both sides route alike only where no choice is near a tie (see the header).
  const double gap = meta_num(g, "min_topk_gap"), steps_gap = meta_num(g, "min_topk_gap_steps");
  std::printf("golden: smallest top-K margin %.2e at the golden forward, %.2e over the 10 steps\n", gap, steps_gap);
  CHECK_MESSAGE(gap > 1e-5, "a top-K choice of the golden batch is nearly tied: pick another seed or batch");
  CHECK_MESSAGE(steps_gap > 1e-5, "a top-K choice during the 10 steps is nearly tied: pick another seed or batch");
}

// The MoE biases (buffers, in tinyds's order: main layers, then MTP blocks; E each) against the golden file's
// "final.<name>" after the 10 steps' bias updates: max |diff| <= 1e-6 (see the header).
void check_final_biases(Transformer<float>& model, const SafeTensors& g) {
  const std::vector<std::string> names = model.moe_bias_names();
  int golden_count = 0;
  for (const auto& kv : g.tensors) {
    const std::string& n = kv.first;
    const std::string suffix = ".ffn.gate.bias";
    if (n.rfind("final.", 0) == 0 && n.size() > suffix.size() &&
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      golden_count++;
  }
  CHECK_MESSAGE(golden_count == static_cast<int>(names.size()), "golden file has " << golden_count
                << " final MoE biases, tinyds names " << names.size());
  const float* bias = model.moe_bias();
  std::size_t offset = 0;
  for (const std::string& n : names) {
    const int64_t E = g.shape_of("final." + n, "golden").at(0);
    std::vector<float> ref = g.get_f32("final." + n, {E}, "golden");
    double worst = 0;
    for (int64_t i = 0; i < E; i++)
      worst = std::max(worst, static_cast<double>(std::fabs(bias[offset + i] - ref[i])));
    offset += static_cast<std::size_t>(E);
    std::printf("golden: %-26s after 10 bias updates, max abs difference %.2e\n", n.c_str(), worst);
    CHECK_MESSAGE(worst <= 1e-6, "MoE bias " << n);
  }
}

}  // namespace

// Compares tinyds with the golden state DIR/<name>_golden.safetensors made from DIR/<name>_init.safetensors.
// For a model with MoE layers or MTP modules (the golden file has "main_loss") also the objective's parts, the
// routing margins and the MoE biases after the bias updates.
void compare_with_golden(const std::string& name) {
  const std::string dir = golden_dir();
  LoadedCheckpoint ck = load_checkpoint(dir + "/" + name + "_init.safetensors");
  SafeTensors g = read_safetensors(dir + "/" + name + "_golden.safetensors");
  std::printf("golden: %s (%s attention)\n", name.c_str(), attention_kind_name(ck.config.model.attention));
  const int B = static_cast<int>(meta_num(g, "batch")), T = static_cast<int>(meta_num(g, "seq"));
  const int V = ck.config.model.vocab_size;
  std::vector<int32_t> inputs = g.get_i32("inputs", {B, T}, "golden");
  std::vector<int32_t> targets = g.get_i32("targets", {B, T}, "golden");

  const bool moe_or_mtp = g.has("main_loss");

  Transformer<float> model(ck.config.model);
  load_params_into(ck, model);
  if (moe_or_mtp) {  // load_params_into copies the checkpoint's MoE biases (buffers) too
    const std::size_t n = ck.buffers.size();
    REQUIRE_MESSAGE(n > 0, "an MoE checkpoint without MoE bias buffers");
    double worst = 0;
    for (std::size_t i = 0; i < n; i++)
      worst = std::max(worst, static_cast<double>(std::fabs(model.moe_bias()[i] - ck.buffers[i])));
    CHECK_MESSAGE(worst == 0.0, "load_params_into did not copy the MoE biases");
  }
  model.zero_grad();
  double loss = model.forward(inputs.data(), targets.data(), B, T);  // the total objective
  model.backward();                                                  // d(total)

  double ref_loss = g.get_f32("loss", {1}, "golden")[0];
  double logit_err = scaled_max_error(model.logits(), g.get_f32("logits", {B, T, V}, "golden"));
  std::printf("golden: loss tinyds %.7f torch %.7f | logits scaled max error %.2e\n", loss, ref_loss, logit_err);
  CHECK(std::fabs(loss - ref_loss) <= 1e-4 * std::fabs(ref_loss));
  CHECK(logit_err <= 1e-4);
  if (moe_or_mtp) check_loss_parts(model, g);
  for (const TensorSpec& t : model.layout().tensors()) {
    double e = scaled_max_error(model.grads() + t.offset, g.get_f32("grad." + t.name, t.shape, "golden"));
    std::printf("golden: grad %-22s scaled max error %.2e\n", t.name.c_str(), e);
    CHECK_MESSAGE(e <= 1e-4, "gradient of " << t.name);
  }

  // 10 AdamW steps on the same batch: zero grads, forward, backward, clip, update (constant lr), then the MoE bias
  // update from that step's forward (a no-op without MoE layers or without "bias" in the balance setting).
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
    model.update_moe_bias();
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
  if (moe_or_mtp) check_final_biases(model, g);
}


TEST_SUITE("golden") {

TEST_CASE("model/golden: nano dense model (gqa) matches the PyTorch reference") { compare_with_golden("nano"); }

TEST_CASE("model/golden: nano dense model with multi-head attention (mha) matches the PyTorch reference") {
  compare_with_golden("nano_mha");
}

TEST_CASE("model/golden: nano dense model with multi-query attention (mqa) matches the PyTorch reference") {
  compare_with_golden("nano_mqa");
}

TEST_CASE("model/golden: nano model with Multi-head Latent Attention matches the PyTorch reference") {
  compare_with_golden("nano_mla");
}

TEST_CASE("model/golden: nano DeepSeek-style model (MLA, MoE, MTP, bias+seqaux balancing) matches the PyTorch reference") {
  compare_with_golden("nano_ds");
}

}  // TEST_SUITE
