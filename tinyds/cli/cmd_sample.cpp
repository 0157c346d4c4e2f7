// tinyds/cli/cmd_sample.cpp — `tinyds sample`: complete a prompt with a trained checkpoint.
#include <cstdio>

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/core/error.h"
#include "tinyds/model/sampling.h"
#include "tinyds/train/checkpoint.h"

namespace tinyds {

int cmd_sample(int argc, char** argv) {
  Args a("tinyds sample", "Complete a prompt with a checkpoint: greedy (temperature 0) or temperature / top-k / top-p "
                          "sampling. The prompt is treated as a question: the model sees <bos> PROMPT '\\n'.");
  std::string ckpt, prompt;
  SamplingParams sp;
  int n = 1;
  bool raw = false;
  a.add_required("--ckpt", ckpt, "checkpoint to sample from");
  a.add_required("--prompt", prompt, "the question text");
  a.add("--temperature", sp.temperature, "0 = greedy");
  a.add("--top-k", sp.top_k, "keep the k most likely tokens (0 = all)");
  a.add("--top-p", sp.top_p, "nucleus: smallest set with this probability mass");
  a.add("--max-new-tokens", sp.max_new_tokens, "longest completion");
  a.add("--seed", sp.seed, "sampling seed");
  a.add("--n", n, "number of completions");
  a.add_flag("--raw", raw, "do not append the newline that ends a question");
  if (!a.parse(argc, argv)) return 0;
  if (n < 1) throw_error("option --n: ", n, " must be at least 1");
  LoadedCheckpoint ck = load_checkpoint(ckpt);
  Transformer<float> model(ck.config.model);
  load_params_into(ck, model);
  std::vector<int> ids = {Tokenizer::BOS};
  std::vector<int> body = ck.tokenizer.encode(raw ? prompt : prompt + "\n");  // errors name a bad character
  ids.insert(ids.end(), body.begin(), body.end());
  std::vector<std::vector<int>> prompts(n, ids);
  // Different rows draw different tokens: one Rng stream is shared across the batch in order.
  std::vector<std::vector<int>> outs = generate(model, prompts, sp, ck.tokenizer.vocab_size(), Tokenizer::EOS, Tokenizer::PAD);
  for (int i = 0; i < n; i++) {
    if (n > 1) std::printf("--- sample %d\n", i + 1);
    std::printf("%s%s\n", raw ? prompt.c_str() : (prompt + "\n").c_str(), ck.tokenizer.decode(outs[i]).c_str());
  }
  return 0;
}

}  // namespace tinyds
