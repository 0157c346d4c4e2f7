// tests/util/one_problem_ckpt.h — a nano checkpoint fine-tuned on ONE generated level-1 problem whose final answer
// it leaves a coin flip, for the tests that RL learns where it must (header only).
//
// The SFT data is that problem written twice: with its worked answer, and with the same worked answer but a wrong
// final line ("#### N+1"). After enough steps the model writes the solution exactly and then picks the right or the
// wrong final number about half the time each. RL (GRPO, PPO) must turn that coin flip into the right answer: the
// reward depends on one uncertain decision, so a working pipeline moves the sampled accuracy to ~1 in a few dozen
// steps. (A checkpoint fine-tuned briefly on the problem alone is a poor test-bed: nano's sampled errors are then
// junk characters spread over the whole completion, and its 2-layer trunk shares the parameters of all those
// positions, so the reward's signal drowns in noise: notebooks/EXPERIMENTS.md, "One-prompt RL".)
//
// GRPO and PPO draw their training prompt from the same generator with the same seed (train split, seed + 7919 *
// level), so with n_train / n_prompts 1 they train on exactly this problem.
#pragma once
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/util/fs_util.h"
#include "tests/util/nano_checkpoint.h"
#include "tinyds/data/generator.h"
#include "tinyds/train/trainer.h"

namespace tinyds::test {

constexpr uint64_t kOneProblemSeed = 1234;  // the GRPO / PPO prompt seed (their default)
constexpr int kOneProblemSftSteps = 400;    // the solution then exact, the final answer ~50/50 (200 steps: ~10% junk)

// Trains the checkpoint once per test process and returns its path.
inline const std::string& one_problem_ckpt() {
  static const std::string path = [] {
    const Problem p = generate_problems(1, 1, kOneProblemSeed + 7919ull * 1, Split::train).at(0);
    const std::string dir = temp_dir("one_problem_sft");
    const std::string file = dir + "/coin_flip.jsonl";
    {
      const std::string wrong = std::to_string(p.final_answer + 1);
      const std::string solution = p.answer.substr(0, p.answer.rfind("#### "));  // "a+b=<<a+b=c>>c\n"
      std::ofstream f(file);
      nlohmann::json right_row{{"question", p.question}, {"answer", p.answer}};
      nlohmann::json wrong_row{{"question", p.question}, {"answer", solution + "#### " + wrong}};
      f << right_row.dump() << "\n" << wrong_row.dump() << "\n";
    }
    Config c = nano_config(192);  // a level-1 problem (question + worked answer) is up to ~150 characters
    c.train.seed = kOneProblemSeed;
    c.train.steps = kOneProblemSftSteps;
    c.train.seq_len = 160;
    c.train.batch_size = 4;
    c.train.warmup_steps = 5;
    c.train.eval_every = 0;
    c.train.eval_problems = 0;
    c.train.ckpt_every = 0;
    TrainOptions o;
    o.out_dir = dir;
    o.train_file = file;
    o.quiet = true;
    return run_training(c, o).final_ckpt;
  }();
  return path;
}

}  // namespace tinyds::test
