// tinyds/cli/main.cpp — `tinyds <subcommand> [options]`: dispatch, and one place that turns errors into
// a message and a non-zero exit status.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "tinyds/cli/commands.h"
#include "tinyds/core/error.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

const Command kCommands[] = {
    {"data", tinyds::cmd_data, "generate GSM8K-style arithmetic problems as JSONL"},
    {"init", tinyds::cmd_init, "write a freshly initialised model checkpoint"},
    {"pretrain", tinyds::cmd_pretrain, "train on whole sequences (question and answer)"},
    {"sft", tinyds::cmd_sft, "supervised fine-tuning: loss on the answer only"},
    {"eval", tinyds::cmd_eval, "held-out exact-match accuracy of a checkpoint"},
    {"grpo", tinyds::cmd_grpo, "R1-Zero-style RL (GRPO / REINFORCE) with accuracy + format rewards"},
    {"sample", tinyds::cmd_sample, "generate a completion from a checkpoint"},
    {"demo", tinyds::cmd_demo, "the end-to-end demo: train the toy model and report accuracy"},
    {"bench", tinyds::cmd_bench, "training throughput vs the GEMM peak and the PyTorch reference"},
    {"kvcache", tinyds::cmd_kvcache, "kv-cache sizes of MHA/GQA/MQA/MLA, naive vs absorbed MLA decode speed"},
    {"ppo", tinyds::cmd_ppo, "PPO with GAE: policy, frozen reference, critic; rule reward"},
    {"distill", tinyds::cmd_distill, "knowledge distillation of a frozen teacher into a student"},
    {"rm", tinyds::cmd_rm, "Bradley-Terry reward model on right vs corrupted solutions"},
    {"dpo", tinyds::cmd_dpo, "DPO / IPO with a frozen reference on right vs corrupted solutions"},
    {"memory", tinyds::cmd_memory, "peak memory by role and category of one sft/dpo/ppo/grpo step"},
};

void usage(FILE* f) {
  std::fprintf(f, "usage: tinyds <command> [options]    (tinyds <command> --help for its options)\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(f, "  %-10s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  // Line-buffered even into a pipe or a file (`make demo | tee demo.log`): progress lines appear as they are printed,
  // and a run stopped early keeps what it printed.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  // Past a file-size limit (`ulimit -f`) the kernel sends SIGXFSZ, which kills silently and leaves a half-written
  // ".tmp" file; ignored, the write fails with EFBIG instead, and the writer reports it naming the file.
  std::signal(SIGXFSZ, SIG_IGN);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const Command& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const tinyds::Error& e) {
      std::fprintf(stderr, "tinyds %s: error: %s\n", c.name, e.what());
      return 1;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "tinyds %s: error: out of memory (try a smaller --batch-size, --seq-len or model)\n", c.name);
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tinyds %s: unexpected error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "tinyds: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
