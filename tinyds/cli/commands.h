// tinyds/cli/commands.h — the subcommands of the `tinyds` tool. Each takes (argc, argv) with argv[0] the
// subcommand name, parses its options with Args (tinyds/cli/args.h) and returns the process exit status.
#pragma once

namespace tinyds {

int cmd_data(int argc, char** argv);      // generate GSM8K-style problems as JSONL   (cmd_data.cpp)
int cmd_init(int argc, char** argv);      // write a freshly initialised checkpoint   (cmd_train.cpp)
int cmd_pretrain(int argc, char** argv);  // train on whole sequences                 (cmd_train.cpp)
int cmd_sft(int argc, char** argv);       // train on completions (prompt masked)     (cmd_train.cpp)
int cmd_eval(int argc, char** argv);      // held-out exact match of a checkpoint     (cmd_eval.cpp)
int cmd_grpo(int argc, char** argv);      // RL with rule-based rewards (GRPO)        (cmd_grpo.cpp)
int cmd_sample(int argc, char** argv);    // generate text from a checkpoint          (cmd_sample.cpp)
int cmd_demo(int argc, char** argv);      // the end-to-end demo                      (cmd_demo.cpp)
int cmd_bench(int argc, char** argv);     // throughput vs GEMM peak and PyTorch      (cmd_bench.cpp)
int cmd_bench_device(int argc, char** argv);  // `bench --device cuda`: step, MFU, roofline (cmd_bench_device.cpp)
int cmd_kvcache(int argc, char** argv);   // kv-cache sizes, naive vs absorbed MLA    (cmd_kvcache.cpp)
int cmd_ppo(int argc, char** argv);       // PPO with a critic and GAE                (cmd_ppo.cpp)
int cmd_memory(int argc, char** argv);    // peak memory of sft/dpo/ppo/grpo steps    (cmd_memory.cpp)
int cmd_distill(int argc, char** argv);   // distil a teacher into a student          (cmd_distill.cpp)
int cmd_rm(int argc, char** argv);        // Bradley-Terry reward model on pairs      (cmd_rm.cpp)
int cmd_dpo(int argc, char** argv);       // DPO / IPO on preference pairs            (cmd_dpo.cpp)

}  // namespace tinyds
