// tinyds/train/evaluate.cpp — see evaluate.h.
#include "tinyds/train/evaluate.h"

#include "tinyds/data/batch.h"
#include "tinyds/model/rollout.h"

namespace tinyds {

std::unique_ptr<Transformer<float>> cpu_copy_of(const Transformer<float>& model) {
  auto cpu = std::make_unique<Transformer<float>>(model.config(), Role::policy, Device::cpu);
  std::vector<float> host(model.num_params());
  model.params_to_host(host.data());
  cpu->params_from_host(host.data());
  host.assign(model.moe_bias_size(), 0.0f);
  model.moe_bias_to_host(host.data());
  cpu->moe_bias_from_host(host.data());
  return cpu;
}

const Transformer<float>& decode_model(const Transformer<float>& model, std::unique_ptr<Transformer<float>>& cpu_copy) {
  // The device Decoder decodes MLA only (its absorbed attention is kernels/mla_decode.cu); mha/gqa/mqa models
  // decode on the CPU through a copy of the weights.
  if (model.device() == Device::cuda && model.config().attention != AttentionKind::mla) {
    cpu_copy = cpu_copy_of(model);
    return *cpu_copy;
  }
  return model;
}

EvalResult evaluate_exact_match(Transformer<float>& model, const Tokenizer& tok, const std::vector<Problem>& problems,
                                int max_new_tokens, int n_examples, int n_errors) {
  if (problems.empty()) return EvalResult{};  // nothing to evaluate (e.g. --eval-problems 0)
  std::vector<std::vector<int>> prompts;
  prompts.reserve(problems.size());
  for (const Problem& p : problems) prompts.push_back(encode_prompt(p, tok));
  // Greedy decoding with the kv-cache Decoder (model/rollout.h; tested equal to generate(), which recomputes
  // the whole sequence for every token and is ~10x slower here).
  RolloutOptions opt;
  opt.sampling.temperature = 0.0f;
  opt.sampling.max_new_tokens = max_new_tokens;
  opt.n_tokens = tok.vocab_size();
  opt.eos = Tokenizer::EOS;
  opt.pad = Tokenizer::PAD;
  std::unique_ptr<Transformer<float>> cpu;  // a CPU copy when the model's attention has no device decoder
  const Rollout ro = rollout(decode_model(model, cpu), prompts, opt);
  std::vector<std::vector<int>> completions(problems.size());
  for (std::size_t i = 0; i < problems.size(); i++) completions[i] = ro.completion_ids(static_cast<int>(i));

  EvalResult r;
  r.n = static_cast<int>(problems.size());
  r.right.assign(problems.size(), 0);
  double total_len = 0;
  for (std::size_t i = 0; i < problems.size(); i++) {
    std::vector<int> ids = completions[i];
    total_len += ids.size();
    if (!ids.empty() && ids.back() == Tokenizer::EOS) ids.pop_back();
    std::string text = tok.decode(ids);
    std::optional<int64_t> got = parse_final_answer(text);
    if (got) r.well_formed++;
    std::size_t bad_at = 0;
    const std::size_t k = find_annotations(text, &bad_at).size();
    if (r.lines.size() <= k) r.lines.resize(k + 1, 0);
    r.lines[k]++;
    const bool right = got && *got == problems[i].final_answer;
    if (right) r.correct++;
    r.right[i] = right;
    if (static_cast<int>(i) < n_examples) r.examples.push_back(problems[i].question + " -> " + text);
    if (!right && static_cast<int>(r.errors.size()) < n_errors)
      r.errors.push_back(problems[i].question + " -> " + text + "  (expected " + std::to_string(problems[i].final_answer) + ")");
  }
  r.accuracy = r.n ? static_cast<double>(r.correct) / r.n : 0.0;
  r.mean_completion_len = r.n ? total_len / r.n : 0.0;
  return r;
}

}  // namespace tinyds
