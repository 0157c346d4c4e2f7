// tests/posttrain/rl_common_test.cpp — the skeleton PPO and GRPO share (posttrain/rl_common.h): the prompt pool's
// order, the AdamW settings of an optimizer step, and that PPO draws its prompts the way GRPO does.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "tinyds/data/batch.h"
#include "tinyds/data/distractors.h"
#include "tinyds/posttrain/grpo_trainer.h"
#include "tinyds/posttrain/ppo_trainer.h"
#include "tinyds/posttrain/rl_common.h"

using namespace tinyds;

TEST_CASE("posttrain/rl_common: a step's prompts come without replacement: every prompt once before any repeats") {
  Tokenizer tok;
  const PromptPool pool({1}, 30, 1234, tok, 256, "test", true);
  REQUIRE(pool.size() == 30u);  // level-1 prompts are ~60-90 tokens: all fit in 256
  const int P = 4;              // 30 prompts: steps 0..6 cover 28, step 7 wraps around after 2
  std::set<int> first_epoch;
  for (int step = 0; step < 7; step++)
    for (int i : pool.step_indices(step, P)) {
      CHECK(i >= 0);
      CHECK(i < 30);
      CHECK(first_epoch.insert(i).second);  // no repeat within the first 28 positions
    }
  const std::vector<int> s7 = pool.step_indices(7, P);
  CHECK(first_epoch.count(s7[0]) == 0);  // the last two unseen prompts come first
  CHECK(first_epoch.count(s7[1]) == 0);
  // A step's prompts depend only on (seed, step): a second pool agrees, another seed does not.
  const PromptPool again({1}, 30, 1234, tok, 256, "test", true);
  const PromptPool other({1}, 30, 99, tok, 256, "test", true);
  CHECK(again.step_indices(5, P) == pool.step_indices(5, P));
  CHECK(other.step_indices(5, P) != pool.step_indices(5, P));
}

TEST_CASE("posttrain/rl_common: prompts that leave no room for a sampled token are dropped") {
  Tokenizer tok;
  const int max_seq_len = 70;  // level-1 prompts are ~60-90 tokens: some fit, some do not
  const PromptPool pool({1}, 40, 1234, tok, max_seq_len, "test", true);
  CHECK(pool.size() > 0u);
  CHECK(pool.size() < 40u);
  for (const Problem& p : pool.problems()) CHECK(static_cast<int>(encode_prompt(p, tok).size()) < max_seq_len);
}

TEST_CASE("posttrain/rl_common: distractors put an irrelevant sentence before the question asked of that share of "
          "the prompts") {
  Tokenizer tok;
  const std::vector<int> levels = {2, 3};
  const PromptPool plain(levels, 100, 77, tok, 256, "test", true);
  const PromptPool all(levels, 100, 77, tok, 256, "test", true, /*distractors=*/1.0);
  REQUIRE(plain.size() == 200u);  // level-2 and level-3 prompts with a sentence are < 200 tokens: all fit in 256
  REQUIRE(all.size() == 200u);
  for (std::size_t i = 0; i < plain.size(); i++) {
    const std::string& q = plain[i].question;
    const std::string& d = all[i].question;
    CHECK(all[i].answer == plain[i].answer);  // the same problems, in the same order
    CHECK(all[i].final_answer == plain[i].final_answer);
    // d = q's sentences up to the question asked, one of the irrelevant sentences, then the question asked.
    const std::size_t asked = q.rfind(". ") + 2;
    REQUIRE(d.size() > q.size());
    REQUIRE(d.compare(0, asked, q, 0, asked) == 0);
    REQUIRE(d.compare(d.size() - (q.size() - asked), std::string::npos, q, asked) == 0);
    const std::string inserted = d.substr(asked, d.size() - q.size());
    bool known = false;
    for (const char* s : distractor_sentences()) known |= inserted == std::string(s) + " ";
    CHECK_MESSAGE(known, d);
  }
  CHECK(plain.step_indices(3, 8) == all.step_indices(3, 8));  // the order does not depend on the sentences
}

TEST_CASE("posttrain/rl_common: AdamW settings warm up linearly, then stay at the peak, with the shared betas") {
  RLOptimizerOptions o;
  o.lr = 1e-3f;
  o.warmup_steps = 4;
  // Independent values: step s < warmup uses lr * (s + 1) / warmup; from the warmup on, lr itself.
  CHECK(o.at(0, o.lr).lr == doctest::Approx(0.25e-3).epsilon(1e-6));
  CHECK(o.at(3, o.lr).lr == doctest::Approx(1e-3).epsilon(1e-6));
  CHECK(o.at(4, o.lr).lr == o.lr);
  CHECK(o.at(100000, o.lr).lr == o.lr);
  CHECK(o.at(10, 2e-3f).lr == 2e-3f);  // a second model's own peak (PPO's critic)
  const AdamWSettings s = o.at(10, o.lr);
  CHECK(s.beta1 == 0.9f);
  CHECK(s.beta2 == 0.99f);
  CHECK(s.eps == 1e-8f);
  CHECK(s.weight_decay == 0.0f);
}

TEST_CASE("posttrain/rl_common: PPO takes its prompts from the shared pool in GRPO's order, and its AdamW settings") {
  Config c = Config::preset("nano");
  c.model.max_seq_len = 128;
  PPOTrainerOptions o;
  o.batch_size = 4;
  o.n_prompts = 30;
  o.levels = {1};
  o.quiet = true;
  o.save = false;
  const PPOTrainer t(c, Tokenizer(), o, nullptr);
  const PromptPool pool(o.levels, o.n_prompts, o.seed, Tokenizer(), c.model.max_seq_len, "test", true);
  REQUIRE(t.problems().size() == pool.size());
  for (std::size_t i = 0; i < pool.size(); i++) CHECK(t.problems()[i].question == pool[static_cast<int>(i)].question);
  for (int step = 0; step < 10; step++) CHECK(t.prompt_indices(step) == pool.step_indices(step, o.batch_size));
  // The optimizer settings are GRPO's defaults (beta2 0.99, not torch's 0.999); only the learning rate differs.
  const GRPOTrainOptions g;
  CHECK(o.beta2 == g.beta2);
  CHECK(o.max_grad_norm == g.max_grad_norm);
}
