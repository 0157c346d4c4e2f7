// tinyds/posttrain/rl_common.cpp — see rl_common.h.
#include "tinyds/posttrain/rl_common.h"

#include <climits>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/data/batch.h"
#include "tinyds/data/distractors.h"
#include "tinyds/data/generator.h"
#include "tinyds/device/device.h"
#include "tinyds/device/optimizer.h"
#include "tinyds/posttrain/trainer_common.h"
#include "tinyds/train/schedule.h"

namespace tinyds {

using json = nlohmann::json;

PromptPool::PromptPool(const std::vector<int>& levels, int n_per_level, uint64_t seed, const Tokenizer& tok,
                       int max_seq_len, const std::string& label, bool quiet, double distractors) {
  int dropped = 0;
  for (int level : levels) {
    std::vector<Problem> generated = generate_problems(level, n_per_level, seed + 7919ull * level, Split::train);
    add_distractors(generated, distractors, seed + 7919ull * level, max_seq_len, /*before_question=*/true);
    for (Problem& p : generated) {
      if (static_cast<int>(encode_prompt(p, tok).size()) < max_seq_len) problems_.push_back(std::move(p));
      else dropped++;
    }
  }
  if (problems_.empty())
    throw_error("no training prompt of levels ", json(levels).dump(), " fits the model's max_seq_len = ",
                max_seq_len, " (all ", dropped, " are longer): use a model with a longer context");
  if (dropped && !quiet)
    std::printf("[%s] %d of %d prompts are longer than max_seq_len %d and were dropped\n", label.c_str(), dropped,
                dropped + static_cast<int>(problems_.size()), max_seq_len);
  order_ = seeded_permutation(static_cast<int>(problems_.size()), seed, 0x9e0);
}

std::vector<int> PromptPool::step_indices(int step, int P) const { return step_rows(order_, step, P); }

AdamWSettings RLOptimizerOptions::at(int optimizer_step, float peak_lr) const {
  // Constant lr after a linear warmup: lr_at with min_lr == lr has nothing to decay to.
  const float lr_now = static_cast<float>(lr_at(optimizer_step, peak_lr, peak_lr, warmup_steps, INT_MAX));
  return AdamWSettings{lr_now, beta1, beta2, adam_eps, weight_decay};
}

RLStepNorm rl_optimizer_step(Transformer<float>& model, AdamW& adam, const RLOptimizerOptions& o, int optimizer_step) {
  // The norm and the clip run where the gradients live (kernels on cuda; the norm comes back to the host).
  OnDevice scope(model.device());
  const double norm = dev::global_norm(model.grads(), model.num_params());
  if (o.max_grad_norm > 0) dev::clip_grad_norm(model.grads(), model.num_params(), norm, o.max_grad_norm);
  const AdamWSettings as = o.at(optimizer_step, o.lr);
  adam.step(model.params(), model.grads(), as);
  // No update_moe_bias: post-training keeps the router biases frozen (moe_balance.h), so lr 0 changes nothing.
  return {norm, as.lr};
}

void write_rl_step(std::ostream& metrics, json& rec, std::string& extra, const Transformer<float>& policy) {
  add_maxvio(rec, extra, policy);
  metrics << rec.dump() << "\n";
  metrics.flush();
}

}  // namespace tinyds
