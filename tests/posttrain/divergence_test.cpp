// tests/posttrain/divergence_test.cpp — every post-training trainer (distill, rm, dpo, grpo, ppo) stops at its
// first non-finite step with the divergence error of train/finite_check.h (the step, what went non-finite, the
// options to change), before its optimizer touches the weights; a whole run keeps its last good checkpoint and
// metrics.jsonl up to it, and writes no checkpoint with a non-finite value.
//
// Shapes: nano preset (C 32, 2 layers, V 128) with max_seq_len 160 (level-1 problems are ~60-110 characters).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/util/error_util.h"
#include "tests/util/fs_util.h"
#include "tests/util/nano_checkpoint.h"
#include "tinyds/data/batch.h"
#include "tinyds/data/generator.h"
#include "tinyds/posttrain/critic.h"
#include "tinyds/posttrain/distill_trainer.h"
#include "tinyds/posttrain/dpo_trainer.h"
#include "tinyds/posttrain/grpo_trainer.h"
#include "tinyds/posttrain/ppo_trainer.h"
#include "tinyds/posttrain/reward_model_trainer.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/finite_check.h"

using namespace tinyds;
using tinyds::test::nano_config;
using tinyds::test::temp_dir;
using tinyds::test::write_fresh_checkpoint;
using tinyds_test::error_of;
using tinyds_test::has;
namespace fs = std::filesystem;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// The step a divergence error names; fails the test unless msg is one, suggesting `lr_option` and --max-grad-norm.
int diverged_step(const std::string& msg, const std::string& lr_option) {
  REQUIRE_MESSAGE(has(msg, "training diverged at step "), msg);
  CHECK_MESSAGE(has(msg, lr_option), msg);
  CHECK_MESSAGE(has(msg, "--max-grad-norm"), msg);
  MESSAGE(msg);
  return std::stoi(msg.substr(msg.find("at step ") + 8));
}

// metrics.jsonl of a run that diverged at bad_step: every line parses (no torn line), its step lines (those
// without "eval_level") are exactly steps 1..bad_step-1, and each holds a finite objective `loss_key` (NaN and Inf
// would be written as null). A diagnostic may already overflow in the last good step (measured: DPO's k3 KL
// estimate, exp of a log-ratio ~1e14, is null at step 2 of 3) while the objective and gradients are finite.
void check_metrics_up_to(const std::string& path, int bad_step, const char* loss_key) {
  std::ifstream f(path);
  REQUIRE(f.good());
  std::vector<int> steps;
  for (std::string line; std::getline(f, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);  // throws (fails the test) on a torn line
    if (j.contains("eval_level")) continue;
    steps.push_back(j.at("step").get<int>());
    REQUIRE_MESSAGE(j.at(loss_key).is_number(), line);
    CHECK(std::isfinite(j.at(loss_key).get<double>()));
  }
  REQUIRE(static_cast<int>(steps.size()) == bad_step - 1);
  for (int i = 0; i < bad_step - 1; i++) CHECK(steps[i] == i + 1);
}

// The checkpoint at path loads (load_checkpoint refuses non-finite values), is from step `step`, and every weight
// in it is finite.
void check_good_checkpoint(const std::string& path, int step) {
  const LoadedCheckpoint ck = load_checkpoint(path);
  CHECK(ck.state.step == step);
  Transformer<float> m(ck.config.model);
  load_params_into(ck, m);
  CHECK(first_nonfinite_tensor(m.layout(), m.params()).empty());
}

// An absurd learning rate without clipping: AdamW moves every weight by ~lr from the first update, and weight
// decay multiplies it by (1 - lr wd) each step even where a gradient is exactly 0 (a degenerate GRPO group, a
// zero PPO advantage), so the logits overflow within a few steps (measured: step 2 or 3). The first step starts
// from finite weights, so at least one good step and its checkpoint come before the divergence.
constexpr float kAbsurdLr = 1e6f;
constexpr float kDecay = 0.1f;

}  // namespace

TEST_CASE("posttrain/divergence: a critic's tensors are named by trunk checkpoint name and head") {
  const ModelConfig mc = nano_config(160).model;
  Critic<float> c(mc, Role::critic);
  c.trunk().init_weights(3);
  c.zero_grad();
  CHECK(first_nonfinite_tensor(critic_grads_named(c, "critic/", "value_head")).empty());
  CHECK(first_nonfinite_tensor(critic_params_named(c, "critic/", "value_head")).empty());
  c.head_grads()[mc.d_model] = kNaN;  // b_v
  CHECK(first_nonfinite_tensor(critic_grads_named(c, "critic/", "value_head")) == "value_head.bias");
  c.head_grads()[0] = kNaN;  // w_v[0]
  CHECK(first_nonfinite_tensor(critic_grads_named(c, "critic/", "value_head")) == "value_head.weight");
  c.trunk().grads()[c.trunk().layout().find("embed").offset] = kNaN;
  CHECK(first_nonfinite_tensor(critic_grads_named(c, "critic/", "value_head")) == "critic/embed");
  c.head()[mc.d_model] = std::numeric_limits<float>::infinity();
  CHECK(first_nonfinite_tensor(critic_params_named(c, "", "reward_head")) == "reward_head.bias");
}

TEST_CASE("posttrain/divergence: each trainer's update stops at a non-finite loss or gradient, weights untouched") {
  // A NaN in the output head: the forward passes the router (the head comes after every MoE layer) and every
  // logit is NaN, so the loss is NaN. The update must refuse it as a divergence at step optimizer_step + 1 and
  // leave every other weight as it was (no optimizer step).
  const Config c = nano_config(160);
  const Tokenizer tok;
  auto poison = [](Transformer<float>& m) { m.params()[m.layout().find("head").offset] = kNaN; };
  auto unchanged = [](const Transformer<float>& m, const std::vector<float>& before) {
    for (std::size_t i = 0; i < before.size(); i++)
      if (!(m.params()[i] == before[i]) && !(std::isnan(m.params()[i]) && std::isnan(before[i]))) return false;
    return true;
  };
  const std::vector<Problem> rows =
      preference_rows(generate_problems(1, 2, 11, Split::train), PairCorruption::mixed, 5);

  SUBCASE("dpo") {
    Transformer<float> policy(c.model, Role::policy), reference(c.model, Role::reference);
    policy.init_weights(7);
    copy_weights(policy, reference);
    poison(policy);
    const std::vector<float> before(policy.params(), policy.params() + policy.num_params());
    AdamW adam(policy.layout(), Role::policy);
    const std::string msg = error_of([&] { dpo_update(policy, reference, adam, rows, tok, DPOTrainOptions{}, 4); });
    CHECK(diverged_step(msg, "--lr") == 5);
    CHECK(has(msg, "the loss is "));  // "nan" or "-nan"
    CHECK(unchanged(policy, before));
  }
  SUBCASE("distill") {
    Transformer<float> student(c.model, Role::policy), teacher(c.model, Role::teacher);
    student.init_weights(7);
    teacher.init_weights(8);
    poison(student);
    const std::vector<float> before(student.params(), student.params() + student.num_params());
    AdamW adam(student.layout(), Role::policy);
    std::vector<Problem> ps = generate_problems(1, 2, 11, Split::train);
    const Batch b = make_batch(ps, {0, 1}, tok, batch_columns(ps, {0, 1}, 160), /*mask_prompt=*/true);
    DistillTrainOptions o;
    o.steps = 10;
    const std::string msg = error_of([&] { distill_update(student, teacher, adam, b, o, 0); });
    CHECK(diverged_step(msg, "--lr") == 1);
    CHECK(has(msg, "the loss is "));  // "nan" or "-nan"
    CHECK(unchanged(student, before));
  }
  SUBCASE("rm: an infinite reward head makes the loss NaN") {
    // The trunk is finite; an Inf in the reward head's bias makes every reward Inf and the Bradley-Terry loss
    // NaN (Inf - Inf), with a NaN gradient.
    Critic<float> rm(c.model, Role::reward);
    rm.trunk().init_weights(7);
    rm.head()[c.model.d_model] = std::numeric_limits<float>::infinity();
    CriticAdamW adam(rm, Role::reward);
    const std::string msg = error_of([&] { reward_model_update(rm, adam, rows, tok, RMTrainOptions{}, 2); });
    CHECK(diverged_step(msg, "--lr") == 3);
    CHECK(has(msg, "the loss is "));  // "nan" or "-nan"
  }
  SUBCASE("rm: a non-finite trunk is the step's divergence, not a bare router error") {
    Critic<float> rm(c.model, Role::reward);
    rm.trunk().init_weights(7);
    const TensorSpec& embed = rm.trunk().layout().find("embed");
    // Every token's embedding NaN: the first MoE router sees NaN logits and refuses them.
    std::fill(rm.trunk().params() + embed.offset, rm.trunk().params() + embed.offset + embed.numel, kNaN);
    CriticAdamW adam(rm, Role::reward);
    const std::string msg = error_of([&] { reward_model_update(rm, adam, rows, tok, RMTrainOptions{}, 0); });
    CHECK(diverged_step(msg, "--lr") == 1);
    CHECK(has(msg, "the forward or backward pass failed"));
    CHECK(has(msg, "not finite"));
  }
}

TEST_CASE("posttrain/divergence: dpo, rm and distill runs stop at their first non-finite step, keeping the last good") {
  const std::string dir = temp_dir("posttrain_diverge");
  const std::string init = write_fresh_checkpoint(dir + "/init.safetensors", nano_config(160));

  SUBCASE("dpo") {
    DPOTrainOptions o;
    o.init_ckpt = init;
    o.out_dir = dir + "/dpo";
    o.steps = 30;
    o.batch_size = 2;
    o.n_train = 8;
    o.lr = kAbsurdLr;
    o.weight_decay = kDecay;
    o.warmup_steps = 0;
    o.max_grad_norm = 0;
    o.eval_problems = 0;
    o.ckpt_every = 1;
    o.quiet = true;
    const int bad = diverged_step(error_of([&] { run_dpo(o); }), "--lr");
    REQUIRE(bad >= 2);
    check_good_checkpoint(o.out_dir + "/latest.safetensors", bad - 1);
    CHECK(!fs::exists(o.out_dir + "/final.safetensors"));
    check_metrics_up_to(o.out_dir + "/metrics.jsonl", bad, "loss");
  }
  SUBCASE("rm") {
    RMTrainOptions o;
    o.init_ckpt = init;
    o.out_dir = dir + "/rm";
    o.steps = 30;
    o.batch_size = 2;
    o.n_train = 8;
    o.lr = kAbsurdLr;
    o.weight_decay = kDecay;
    o.warmup_steps = 0;
    o.max_grad_norm = 0;
    o.eval_pairs = 0;
    o.ckpt_every = 1;
    o.quiet = true;
    const int bad = diverged_step(error_of([&] { run_reward_model(o); }), "--lr");
    REQUIRE(bad >= 2);
    check_good_checkpoint(o.out_dir + "/latest.safetensors", bad - 1);
    const LoadedRewardModel rm = load_reward_model(o.out_dir + "/latest");  // the head file too
    CHECK(first_nonfinite_tensor(critic_params_named(*rm.model, "", "reward_head")).empty());
    CHECK(!fs::exists(o.out_dir + "/final.safetensors"));
    check_metrics_up_to(o.out_dir + "/metrics.jsonl", bad, "loss");
  }
  SUBCASE("distill") {
    DistillTrainOptions o;
    o.teacher_ckpt = init;
    o.student = tinyds::test::nano_config(0);  // the teacher's context
    o.out_dir = dir + "/distill";
    o.steps = 30;
    o.batch_size = 2;
    o.n_train = 8;
    o.lr = kAbsurdLr;
    o.min_lr = 0;
    o.weight_decay = kDecay;
    o.warmup_steps = 0;
    o.max_grad_norm = 0;
    o.eval_problems = 0;
    o.ckpt_every = 1;
    o.quiet = true;
    const int bad = diverged_step(error_of([&] { run_distill(o); }), "--lr");
    REQUIRE(bad >= 2);
    check_good_checkpoint(o.out_dir + "/latest.safetensors", bad - 1);
    CHECK(!fs::exists(o.out_dir + "/final.safetensors"));
    check_metrics_up_to(o.out_dir + "/metrics.jsonl", bad, "loss");
  }
}

TEST_CASE("posttrain/divergence: grpo and ppo runs stop at the first non-finite step and keep the last good one") {
  const std::string dir = temp_dir("rl_diverge");

  SUBCASE("grpo") {
    GRPOTrainOptions o;
    o.init_ckpt = write_fresh_checkpoint(dir + "/init.safetensors", nano_config(160));
    o.out_dir = dir + "/grpo";
    o.steps = 30;
    o.prompts_per_step = 2;
    o.grpo.num_generations = 2;
    o.max_completion_length = 4;
    o.n_train = 8;
    o.lr = kAbsurdLr;
    o.weight_decay = kDecay;
    o.warmup_steps = 0;
    o.max_grad_norm = 0;
    o.eval_problems = 0;
    o.ckpt_every = 1;
    o.quiet = true;
    const int bad = diverged_step(error_of([&] { run_grpo(o); }), "--lr");
    REQUIRE(bad >= 2);
    check_good_checkpoint(o.out_dir + "/latest.safetensors", bad - 1);
    CHECK(!fs::exists(o.out_dir + "/final.safetensors"));
    check_metrics_up_to(o.out_dir + "/metrics.jsonl", bad, "loss");
  }
  SUBCASE("ppo") {
    PPOTrainerOptions o;
    o.levels = {1};  // the prompts this subcase was measured with
    o.freezing_actor_steps = 0;  // the policy diverges from step 1
    o.out_dir = dir + "/ppo";
    o.steps = 30;
    o.batch_size = 2;
    o.response_length = 4;
    o.n_prompts = 8;
    o.ppo.num_ppo_epochs = 1;  // with 2, the second epoch of step 1 already diverges (measured): no checkpoint
    o.lr = kAbsurdLr;
    o.critic_learning_rate = -1;  // the same absurd rate
    o.weight_decay = kDecay;
    o.warmup_steps = 0;
    o.max_grad_norm = 0;
    o.eval_problems = 0;
    o.ckpt_every = 1;
    o.quiet = true;
    const std::string msg = error_of([&] { PPOTrainer(nano_config(160), Tokenizer(), o, nullptr).run(); });
    const int bad = diverged_step(msg, "--learning-rate");
    REQUIRE(bad >= 2);
    check_good_checkpoint(o.out_dir + "/latest.safetensors", bad - 1);
    check_good_checkpoint(o.out_dir + "/latest.critic.safetensors", bad - 1);
    Critic<float> critic(nano_config(160).model, Role::critic);
    load_scalar_head(o.out_dir + "/latest.value_head.safetensors", critic, "value_head");
    CHECK(std::isfinite(critic.head()[0]));
    CHECK(!fs::exists(o.out_dir + "/final.safetensors"));
    check_metrics_up_to(o.out_dir + "/metrics.jsonl", bad, "pg_loss");
  }
}
