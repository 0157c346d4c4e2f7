// tinyds/cli/cmd_data.cpp — `tinyds data`: generate GSM8K-style problems and write them as JSONL.
//
//   tinyds data --level 2 --n 5000 --seed 1 --split train --out data/l2_train.jsonl
// The file is in GSM8K's own format ({"question", "answer"} per line), so `tinyds sft --train-file` and any
// GSM8K tool read it. Train and test files never share a question, whatever the seeds (generator.h).
#include <cstdio>
#include <string>

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/core/error.h"
#include "tinyds/data/distractors.h"
#include "tinyds/data/generator.h"
#include "tinyds/data/gsm8k.h"

namespace tinyds {

int cmd_data(int argc, char** argv) {
  Args args("tinyds data", "Generate GSM8K-style arithmetic word problems as JSONL (one {\"question\", \"answer\"} per line).");
  int level = 1;
  int n = 1000;
  uint64_t seed = 1;
  std::string split_name = "train";
  std::string out;
  double distractors = 0;
  bool before_question = false;
  args.add("--level", level, "difficulty 1-4 = number of operations (level 4: + and - operands up to 999)");
  args.add("--n", n, "number of problems to write");
  args.add("--seed", seed, "random seed (same seed, same problems)");
  args.add("--split", split_name, "train or test (disjoint by a hash of the question)");
  args.add("--distractors", distractors, "share of the questions given an irrelevant sentence (data/distractors.h), 0..1");
  args.add("--before-question", before_question, "put that sentence just before the question asked (as `grpo "
                                                 "--prompt-distractors` does) instead of at a drawn sentence boundary");
  args.add_required("--out", out, "output JSONL file");
  if (!args.parse(argc, argv)) return 0;

  if (level < 1 || level > 4) throw_error("option --level: ", level, " is not a level (use 1, 2, 3 or 4)");
  if (n < 1) throw_error("option --n: ", n, " must be at least 1");
  Split split;
  try {
    split = parse_split(split_name);
  } catch (const Error& e) {
    throw_error("option --split: ", e.what());
  }

  std::vector<Problem> problems = generate_problems(level, n, seed, split);
  if (!(distractors >= 0 && distractors <= 1))
    throw_error("option --distractors: ", distractors, " must be a share in [0, 1]");
  add_distractors(problems, distractors, seed, /*max_tokens=*/1 << 30, before_question);
  write_gsm8k_jsonl(out, problems);
  std::printf("wrote %d level-%d %s problems (seed %llu) to %s\n", n, level, split_name.c_str(),
              static_cast<unsigned long long>(seed), out.c_str());
  return 0;
}

}  // namespace tinyds
