// tests/util/one_problem_ckpt.h — a nano checkpoint briefly fine-tuned on ONE generated level-1 problem, for the
// tests that RL learns where it must (header only).
//
// The SFT run sees only that problem (n_train 1), for few enough steps that the model writes its format but
// samples the right answer only some of the time: RL then has a group with mixed rewards to learn from, and the
// test can demand a clear rise. GRPO and PPO draw their training prompt from the same generator with the same
// seed (train split, seed + 7919 * level), so with n_train / n_prompts 1 they train on exactly this problem.
#pragma once
#include <string>

#include "tests/util/fs_util.h"
#include "tests/util/nano_checkpoint.h"

namespace tinyds::test {

constexpr uint64_t kOneProblemSeed = 1234;  // the SFT data seed = the GRPO / PPO prompt seed (their default)
constexpr int kOneProblemSftSteps = 160;    // sampled accuracy at T 1 then ~0.4 (120 steps: ~0.15, 200: ~0.8)

// Trains the checkpoint once per test process and returns its path.
inline const std::string& one_problem_ckpt() {
  static const std::string path = [] {
    Config c = nano_config(192);  // a level-1 problem (question + worked answer) is up to ~150 characters
    c.data.levels = {1};
    c.data.n_train = 1;
    c.train.seed = kOneProblemSeed;
    c.train.steps = kOneProblemSftSteps;
    c.train.seq_len = 160;
    c.train.batch_size = 4;
    c.train.warmup_steps = 5;
    c.train.eval_every = 0;
    c.train.eval_problems = 0;
    c.train.ckpt_every = 0;
    return sft_checkpoint(c, temp_dir("one_problem_sft"));
  }();
  return path;
}

}  // namespace tinyds::test
