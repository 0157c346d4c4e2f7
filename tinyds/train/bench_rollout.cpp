// tinyds/train/bench_rollout.cpp — see bench_rollout.h. Shapes: B sequences, N new tokens each.
#include "tinyds/train/bench_rollout.h"

#include <ctime>

#include "tinyds/core/timer.h"
#include "tinyds/data/batch.h"
#include "tinyds/data/generator.h"
#include "tinyds/data/tokenizer.h"

namespace tinyds {

std::vector<std::vector<int>> rollout_bench_prompts(int P, int G, int level, uint64_t seed) {
  const Tokenizer tok;
  std::vector<std::vector<int>> prompts;
  for (const Problem& p : generate_problems(level, P, seed, Split::test))
    for (int g = 0; g < G; g++) prompts.push_back(encode_prompt(p, tok));
  return prompts;
}

RolloutOptions rollout_bench_options(int max_new_tokens, int n_tokens, float temperature, uint64_t seed) {
  RolloutOptions o;
  o.sampling.temperature = temperature;
  o.sampling.max_new_tokens = max_new_tokens;
  o.sampling.seed = seed;
  o.n_tokens = n_tokens;
  o.eos = -1;  // no token id is -1: every sequence runs the full max_new_tokens (bench_rollout.h)
  o.pad = Tokenizer::PAD;
  return o;
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

RolloutTimes time_rollouts(const Transformer<float>& model, const std::vector<std::vector<int>>& prompts,
                           const RolloutOptions& opt, int warmup, int repeats) {
  RolloutTimes t;
  for (int i = 0; i < warmup + repeats; i++) {
    RolloutOptions o = opt;
    o.sampling.seed = opt.sampling.seed + static_cast<uint64_t>(i);
    const double cpu0 = process_cpu_seconds();
    Timer wall;
    const Rollout r = rollout(model, prompts, o);
    const double w = wall.seconds(), c = process_cpu_seconds() - cpu0;
    if (i < warmup) continue;
    t.wall_s.push_back(w);
    t.cpu_s.push_back(c);
    t.tokens = 0;
    for (int b = 0; b < r.B; b++) t.tokens += r.completion_len[b];
  }
  return t;
}

}  // namespace tinyds
