// tinyds/posttrain/own_answers.cpp — see own_answers.h.
#include "tinyds/posttrain/own_answers.h"

#include <memory>

#include "tinyds/core/error.h"
#include "tinyds/data/batch.h"
#include "tinyds/model/rollout.h"
#include "tinyds/posttrain/reward.h"
#include "tinyds/train/evaluate.h"

namespace tinyds {

PairSource parse_pair_source(const std::string& s) {
  if (s == "corrupted") return PairSource::corrupted;
  if (s == "own") return PairSource::own;
  throw_error("--rejected '", s, "' is not one of: corrupted (the right solution with one result made wrong), own (the "
              "model's own greedy answer where it is wrong)");
}

const char* pair_source_name(PairSource s) { return s == PairSource::own ? "own" : "corrupted"; }

std::vector<std::optional<Problem>> own_wrong_answers(const Transformer<float>& model, const Tokenizer& tok,
                                                     const std::vector<Problem>& problems, int max_new_tokens) {
  std::vector<std::vector<int>> prompts;
  for (const Problem& p : problems) prompts.push_back(encode_prompt(p, tok));
  RolloutOptions ro;  // greedy, as the held-out evaluation decodes (train/evaluate.cpp)
  ro.sampling.temperature = 0.0f;
  ro.sampling.max_new_tokens = max_new_tokens;
  ro.n_tokens = tok.vocab_size();
  ro.eos = Tokenizer::EOS;
  ro.pad = Tokenizer::PAD;
  std::unique_ptr<Transformer<float>> cpu;
  const Rollout r = rollout(decode_model(model, cpu), prompts, ro);
  std::vector<std::optional<Problem>> out(problems.size());
  for (std::size_t p = 0; p < problems.size(); p++) {
    std::vector<int> ids = r.completion_ids(static_cast<int>(p));
    const RewardBreakdown score =
        score_completion_tokens(ids.data(), static_cast<int>(ids.size()), tok, problems[p].final_answer);
    if (score.accuracy == 1.0) continue;  // right (every line too): nothing of its own to reject
    if (!ids.empty() && ids.back() == Tokenizer::EOS) ids.pop_back();  // preference_batch appends <eos>
    Problem bad = problems[p];
    bad.answer = tok.decode(ids);
    bad.final_answer = parse_final_answer(bad.answer).value_or(problems[p].final_answer + 1);
    out[p] = bad;
  }
  return out;
}

std::vector<Problem> own_pair_rows(const Transformer<float>& model, const Tokenizer& tok,
                                   const std::vector<Problem>& pool, const std::vector<int>& order, long* next, int P,
                                   int rounds, int max_new_tokens,
                                   int* drawn) {
  if (order.empty()) throw_error("own_pair_rows: no problems to draw from");
  std::vector<Problem> chosen, rejected;
  int n = 0;
  for (int round = 0; round < rounds && static_cast<int>(chosen.size()) < P; round++) {
    std::vector<Problem> batch;
    for (int i = 0; i < P; i++) batch.push_back(pool[order[(*next)++ % order.size()]]);
    n += P;
    const std::vector<std::optional<Problem>> own = own_wrong_answers(model, tok, batch, max_new_tokens);
    for (int i = 0; i < P && static_cast<int>(chosen.size()) < P; i++)
      if (own[i]) { chosen.push_back(batch[i]); rejected.push_back(*own[i]); }
  }
  if (drawn) *drawn = n;
  chosen.insert(chosen.end(), rejected.begin(), rejected.end());
  return chosen;
}

}  // namespace tinyds
