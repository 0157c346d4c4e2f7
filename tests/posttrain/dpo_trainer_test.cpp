// tests/posttrain/dpo_trainer_test.cpp — the DPO trainer (posttrain/dpo_trainer.h): repeated updates on the same
// pairs drive the DPO loss down and the implicit reward margin up, the whole loop runs from a checkpoint, logs every
// field and checkpoints, and bad options are refused with errors naming them.
//
// Shapes: nano preset (C 32, 2 layers, V 128) with max_seq_len 160 (level-1 problems are ~60-110 characters).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/util/fs_util.h"
#include "tests/util/error_util.h"
#include "tests/util/nano_checkpoint.h"
#include "tinyds/data/generator.h"
#include "tinyds/posttrain/dpo_trainer.h"
#include "tinyds/posttrain/ppo_trainer.h"
#include "tinyds/train/checkpoint.h"

using namespace tinyds;
using tinyds::test::temp_dir;
using tinyds_test::error_of;
using tinyds_test::has;
namespace fs = std::filesystem;

namespace {

Config nano160() { return tinyds::test::nano_config(160); }

}  // namespace

TEST_CASE("posttrain/dpo_trainer: updates on fixed pairs lower the loss and raise the margin, from exactly 0") {
  // Policy == reference bit for bit at the start, so every implicit reward is exactly 0 and the sigmoid loss is
  // exactly log 2. Eight AdamW steps of lr 2e-3 on the same 4 pairs must then separate chosen from rejected: the
  // measured loss falls to 0.11 and the margin rises to 2.6; the bounds below (loss < 0.35, margin > 1) are far
  // from both the start and the measurements.
  const Config c = nano160();
  Transformer<float> policy(c.model, Role::policy), reference(c.model, Role::reference);
  policy.init_weights(7);
  copy_weights(policy, reference);
  AdamW adam(policy.layout(), Role::policy);
  const Tokenizer tok;
  const std::vector<Problem> rows =
      preference_rows(generate_problems(1, 4, 11, Split::train), PairCorruption::mixed, 5);
  DPOTrainOptions o;
  o.lr = 2e-3f;
  o.warmup_steps = 0;  // full-size steps from the first: the bounds below were measured so
  o.dpo.beta = 0.5;
  o.credit_steps = false;  // whole rows, as the bounds were measured
  std::vector<DPOStepStats> st;
  for (int i = 0; i < 8; i++) st.push_back(dpo_update(policy, reference, adam, rows, tok, o, i));
  CHECK(st[0].dpo.loss == doctest::Approx(std::log(2.0)).epsilon(1e-6));
  CHECK(st[0].dpo.rewards_margin == 0.0);
  CHECK(st[0].kl == 0.0);
  CHECK(st[0].grad_norm > 0);
  MESSAGE("loss " << st[0].dpo.loss << " -> " << st.back().dpo.loss << ", margin " << st.back().dpo.rewards_margin
                  << ", accuracy " << st.back().dpo.rewards_accuracy << ", kl " << st.back().kl);
  CHECK(st.back().dpo.loss < 0.35);
  CHECK(st.back().dpo.rewards_margin > 1.0);
  CHECK(st.back().dpo.rewards_accuracy == 1.0);
  CHECK(st.back().kl > 0.0);  // the policy has moved away from the reference
  // IPO runs through the same update and starts at its own fixed point: (0 - 1/(2 beta))^2 = 1 for beta 0.5.
  Transformer<float> p2(c.model, Role::policy);
  copy_weights(reference, p2);
  AdamW adam2(p2.layout(), Role::policy);
  o.dpo.loss_type = DPOLossType::ipo;
  CHECK(dpo_update(p2, reference, adam2, rows, tok, o, 0).dpo.loss == doctest::Approx(1.0).epsilon(1e-6));
}

TEST_CASE("posttrain/dpo_trainer: rpo_alpha adds alpha times the gradient of the chosen rows' mean NLL") {
  // The gradient with rpo_alpha a must be the plain DPO gradient plus a times the gradient of the mean cross-entropy
  // of the chosen rows alone, computed here by the model's own LM loss (forward with targets, backward): a path
  // independent of the trainer's log-probs. nano-dense has no MTP and no balance loss, so its objective is exactly
  // that mean. No clipping, so the gradients left in the models are the raw ones.
  Config c = Config::preset("nano-dense");
  c.model.max_seq_len = 160;
  const Tokenizer tok;
  const std::vector<Problem> rows =
      preference_rows(generate_problems(1, 4, 11, Split::train), PairCorruption::mixed, 5);
  DPOTrainOptions o;
  o.max_grad_norm = 0;
  auto grads = [&](double alpha, double* nll) {
    Transformer<float> policy(c.model, Role::policy), reference(c.model, Role::reference);
    policy.init_weights(7);
    copy_weights(policy, reference);
    AdamW adam(policy.layout(), Role::policy);
    o.rpo_alpha = alpha;
    *nll = dpo_update(policy, reference, adam, rows, tok, o, 0).nll;
    return std::vector<float>(policy.grads(), policy.grads() + policy.num_params());
  };
  double nll0 = 0, nll1 = 0;
  const std::vector<float> g0 = grads(0.0, &nll0), g1 = grads(0.5, &nll1);
  Transformer<float> m(c.model, Role::policy);
  m.init_weights(7);
  const std::vector<Problem> chosen(rows.begin(), rows.begin() + 4);
  const Batch b = preference_batch(chosen, tok, c.model.max_seq_len);
  m.zero_grad();
  const double ce = m.forward(b.inputs.data(), b.targets.data(), b.B, b.T);
  m.backward();
  CHECK(nll0 == doctest::Approx(ce).epsilon(1e-5));  // logged whatever the weight; fp32 sums of ~300 log-probs
  CHECK(nll1 == nll0);
  double scale = 0, worst = 0;
  for (std::size_t i = 0; i < g0.size(); i++) {
    scale = std::max(scale, std::abs(0.5 * m.grads()[i]));
    worst = std::max(worst, std::abs(g1[i] - g0[i] - 0.5 * m.grads()[i]));
  }
  MESSAGE("largest |g_rpo - g_dpo - 0.5 g_nll| " << worst << " against largest |0.5 g_nll| " << scale);
  REQUIRE(scale > 0);
  // fp32: the three gradients are sums over ~600 positions of terms up to ~scale; 1e-4 relative is ~100 ulps of
  // the largest, far below a missing or doubled term (relative error 1) or a wrong count of tokens (> 0.1).
  CHECK(worst < 1e-4 * scale);
}

TEST_CASE("posttrain/dpo_trainer: credit_steps leaves the rejected answer's right results after the difference out") {
  // One pair: a right two-step solution against one with the wrong operation in line 2, whose arithmetic holds
  // ("27-5=<<27-5=22>>22": its result "22>>22" is spared, preference.h). With credit_steps the rejected row's summed
  // log-prob loses exactly those six terms (each < 0), so it is higher; the chosen row is untouched.
  Config c = Config::preset("nano-dense");
  c.model.max_seq_len = 160;
  Problem w;
  w.question = "Sara is 81. Mom is 54 younger, Dad is 5 times as old. How old is Dad?";
  w.answer = "81-54=<<81-54=27>>27\n27*5=<<27*5=135>>135\n#### 135";
  w.final_answer = 135;
  Problem l = w;
  l.answer = "81-54=<<81-54=27>>27\n27-5=<<27-5=22>>22\n#### 22";
  l.final_answer = 22;
  auto stats = [&](bool credit) {
    Transformer<float> policy(c.model, Role::policy), reference(c.model, Role::reference);
    policy.init_weights(7);
    copy_weights(policy, reference);
    AdamW adam(policy.layout(), Role::policy);
    DPOTrainOptions o;
    o.credit_steps = credit;
    return dpo_update(policy, reference, adam, {w, l}, Tokenizer(), o, 0);
  };
  const DPOStepStats off = stats(false), on = stats(true);
  CHECK(on.logps_chosen == off.logps_chosen);
  CHECK(on.logps_rejected > off.logps_rejected);
  MESSAGE("rejected summed log-prob " << off.logps_rejected << " -> " << on.logps_rejected << " with credit");
}

TEST_CASE("posttrain/dpo_trainer: runs from a checkpoint, logs every field, evaluates and checkpoints") {
  const std::string dir = temp_dir("dpo_e2e");
  DPOTrainOptions o;
  // A freshly initialised nano checkpoint (DPO needs no trained policy to show its objective move).
  o.init_ckpt = tinyds::test::write_fresh_checkpoint(dir + "/init.safetensors", nano160());
  o.out_dir = dir + "/dpo";
  o.steps = 10;
  o.batch_size = 4;
  o.n_train = 4;  // every step sees the same 4 problems (new corruptions each step): the loss must fall
  o.levels = {1};
  o.eval_levels = {};  // the training level
  o.rejected = PairSource::corrupted;
  o.credit_steps = false;  // whole rows, as the bounds below were measured
  o.lr = 2e-3f;
  o.warmup_steps = 0;  // full-size steps from the first: the bounds below were measured so
  o.dpo.beta = 0.5;
  o.eval_problems = 3;
  o.max_new_tokens = 12;
  o.eval_every = 5;
  o.ckpt_every = 5;
  o.quiet = true;
  const DPOResult r = run_dpo(o);
  REQUIRE(r.steps.size() == 10);
  REQUIRE(r.before.size() == 1);
  REQUIRE(r.after.size() == 1);
  CHECK(r.before[0].n == 3);
  MESSAGE("loss " << r.steps.front().dpo.loss << " -> " << r.steps.back().dpo.loss << ", margin "
                  << r.steps.back().dpo.rewards_margin);
  CHECK(r.steps.front().dpo.loss == doctest::Approx(std::log(2.0)).epsilon(1e-6));
  // Measured 0.47 and 0.54 (new corruptions every step make this slower than the fixed pairs above).
  CHECK(r.steps.back().dpo.loss < 0.6);
  CHECK(r.steps.back().dpo.rewards_margin > 0.2);
  CHECK(r.peak_bytes > 0);

  const char* fields[] = {"step", "loss", "rewards_chosen", "rewards_rejected", "rewards_margin", "rewards_accuracy",
                          "pairs", "drawn", "logps_chosen", "logps_rejected", "kl", "grad_norm", "lr", "step_s", "tokens",
                          "tokens_per_s", "peak_bytes", "elapsed_s", "maxvio"};
  std::ifstream f(o.out_dir + "/metrics.jsonl");
  std::string line;
  int step_lines = 0, eval_lines = 0;
  while (std::getline(f, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("eval_accuracy")) { eval_lines++; continue; }
    step_lines++;
    for (const char* k : fields) CHECK_MESSAGE(j.contains(k), "metrics line ", step_lines, " lacks ", k);
  }
  CHECK(step_lines == 10);
  CHECK(eval_lines == 3);  // steps 0, 5 and 10

  CHECK(fs::exists(o.out_dir + "/latest.safetensors"));
  REQUIRE(r.final_ckpt == o.out_dir + "/final.safetensors");
  const LoadedCheckpoint a = load_checkpoint(o.init_ckpt), b = load_checkpoint(r.final_ckpt);
  REQUIRE(a.params.size() == b.params.size());
  std::size_t changed = 0;
  for (std::size_t i = 0; i < a.params.size(); i++) changed += a.params[i] != b.params[i];
  CHECK(changed > a.params.size() / 2);
  CHECK(b.state.step == 10);

  // --rejected own: the fresh model's greedy answers are junk, never right, so the first round of P problems gives
  // P pairs.
  o.rejected = PairSource::own;
  o.out_dir = dir + "/dpo_own";
  o.steps = 2;
  o.eval_problems = 0;
  o.eval_every = o.ckpt_every = 0;
  const DPOResult own = run_dpo(o);
  REQUIRE(own.steps.size() == 2);
  for (const DPOStepStats& s : own.steps) {
    CHECK(s.pairs == o.batch_size);
    CHECK(s.drawn == o.batch_size);
  }
  fs::remove_all(dir);
}

TEST_CASE("posttrain/dpo_trainer: bad options are errors naming the option and the value") {
  DPOTrainOptions o;
  CHECK(has(error_of([&] { run_dpo(o); }), "--init"));
  o.init_ckpt = "/nonexistent/sft.safetensors";
  CHECK(has(error_of([&] { run_dpo(o); }), "/nonexistent/sft.safetensors"));
  o.dpo.beta = 0;
  CHECK(has(error_of([&] { validate(o); }), "--beta = 0"));
  o.dpo.beta = 0.1;
  o.batch_size = 0;
  CHECK(has(error_of([&] { validate(o); }), "--batch-size = 0"));
  o.batch_size = 4;
  o.levels = {1, 5};
  CHECK(has(error_of([&] { validate(o); }), "--levels = 5"));
  o.levels = {1};
  o.max_grad_norm = -1;
  CHECK(has(error_of([&] { validate(o); }), "--max-grad-norm = -1"));
  CHECK(has(error_of([] { parse_dpo_loss_type("hinge"); }), "--loss-type 'hinge'"));
  // An odd number of rows is not a set of pairs.
  const Config c = nano160();
  Transformer<float> policy(c.model, Role::policy), reference(c.model, Role::reference);
  AdamW adam(policy.layout(), Role::policy);
  const std::vector<Problem> three = generate_problems(1, 3, 1, Split::train);
  CHECK(has(error_of([&] { dpo_update(policy, reference, adam, three, Tokenizer(), DPOTrainOptions{}, 0); }),
            "3 rows are not chosen / rejected pairs"));
}
