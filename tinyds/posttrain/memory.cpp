// tinyds/posttrain/memory.cpp — see memory.h.
//
// Shapes: P prompts, G generations, S = P*G sequences, T columns of a training batch, N = S*T, V vocab.
#include "tinyds/posttrain/memory.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <memory>
#include <sstream>

#include "tinyds/core/error.h"
#include "tinyds/core/timer.h"
#include "tinyds/data/batch.h"
#include "tinyds/data/generator.h"
#include "tinyds/ops/adamw.h"
#include "tinyds/posttrain/losses/dpo.h"
#include "tinyds/posttrain/frozen.h"
#include "tinyds/posttrain/losses/grpo.h"
#include "tinyds/posttrain/losses/logprobs.h"
#include "tinyds/posttrain/grpo_trainer.h"
#include "tinyds/posttrain/ppo_trainer.h"
#include "tinyds/posttrain/preference.h"
#include "tinyds/posttrain/reward.h"
#include "tinyds/posttrain/rl_common.h"
#include "tinyds/train/optimizer.h"

namespace tinyds {

namespace {

constexpr Category kState[] = {Category::weights, Category::grads, Category::adam_m, Category::adam_v};

std::size_t num_router_biases(const ModelConfig& m) {  // E per MoE block, the MTP modules' blocks included
  std::size_t n = 0;
  for (int l = 0; l < m.n_layer + m.mtp_depth; l++)
    if (is_moe_layer(m, l)) n += static_cast<std::size_t>(m.n_routed_experts);
  return n;
}

// Current resident set (VmRSS) in bytes; 0 if unknown.
std::size_t rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  return 0;
}

// Writing "5" to /proc/self/clear_refs resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0).
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

// The model's weights and router biases from init, or a fresh seeded init.
void load_or_init(Transformer<float>& model, const LoadedCheckpoint* init, uint64_t seed) {
  if (init) load_params_into(*init, model);
  else model.init_weights(seed);
}

std::vector<Problem> memory_problems(int n, uint64_t seed) {
  return generate_problems(1, n, seed, Split::train);
}

// One AdamW step of the policy with its gradient clipped to norm 1 (as the trainers do). No router-bias update:
// post-training keeps the biases frozen (moe_balance.h), and the update allocates nothing either way.
void policy_step(Transformer<float>& policy, AdamW& opt) {
  const double norm = global_norm(policy.grads(), policy.num_params());
  clip_grad_norm(policy.grads(), policy.num_params(), norm, 1.0);
  opt.step(policy.params(), policy.grads(), AdamWSettings{1e-5f, 0.9f, 0.999f, 1e-8f, 0.0f});
}

// ---- sft: policy only ----
void step_sft(MethodMemory& mm, const Config& cfg, const Tokenizer& tok, const LoadedCheckpoint* init,
              const MemoryOptions& o) {
  const int S = o.prompts * o.num_generations;
  Transformer<float> policy(cfg.model, Role::policy);
  load_or_init(policy, init, cfg.train.seed);
  AdamW opt(policy.layout(), Role::policy);
  const std::vector<Problem> ps = memory_problems(S, o.seed);
  std::vector<int> idx(S);
  for (int i = 0; i < S; i++) idx[i] = i;
  const Batch b = make_batch(ps, idx, tok, batch_columns(ps, idx, cfg.model.max_seq_len), /*mask_prompt=*/true);
  mm.sequences = b.B; mm.columns = b.T;
  policy.zero_grad();
  policy.forward(b.inputs.data(), b.targets.data(), b.B, b.T);
  policy.backward();
  policy_step(policy, opt);
}

// ---- dpo: policy + frozen reference, chosen / rejected pairs ----
void step_dpo(MethodMemory& mm, const Config& cfg, const Tokenizer& tok, const LoadedCheckpoint* init,
              const MemoryOptions& o) {
  const int S = o.prompts * o.num_generations;
  const int pairs = std::max(1, S / 2);
  Transformer<float> policy(cfg.model, Role::policy), reference(cfg.model, Role::reference);
  load_or_init(policy, init, cfg.train.seed);
  copy_weights(policy, reference);
  AdamW opt(policy.layout(), Role::policy);
  // Rows [0, pairs): the right answer (chosen); rows [pairs, 2 pairs): the same reasoning ending in a wrong number
  // (posttrain/preference.h, as `tinyds dpo` builds its pairs).
  const std::vector<Problem> ps = preference_rows(memory_problems(pairs, o.seed), PairCorruption::final_answer, o.seed);
  const Batch b = preference_batch(ps, tok, cfg.model.max_seq_len);
  const int B = b.B, T = b.T, V = cfg.model.vocab_size;
  const long N = static_cast<long>(B) * T, half = static_cast<long>(pairs) * T;
  mm.sequences = B; mm.columns = T;
  Buffer<float> mask(N, Role::policy, Category::activations), lp(N, Role::policy, Category::activations);
  Buffer<float> lp_ref(N, Role::reference, Category::activations), dlp(N, Role::policy, Category::activations);
  Buffer<float> dlogits(static_cast<std::size_t>(N) * V, Role::policy, Category::activations);
  for (long n = 0; n < N; n++) mask[n] = b.targets[n] >= 0 ? 1.0f : 0.0f;
  frozen_logprobs(lp_ref.data(), reference, b.inputs.data(), b.targets.data(), B, T, 1.0f);  // frozen.h
  policy.zero_grad();
  policy.forward(b.inputs.data(), nullptr, B, T);
  logprobs_forward(lp.data(), policy.logits(), b.targets.data(), static_cast<int>(N), V);
  const DPOConfig dc;
  dpo_loss_forward(lp.data(), lp_ref.data(), mask.data(), lp.data() + half, lp_ref.data() + half, mask.data() + half,
                   pairs, T, dc);
  dpo_loss_backward(dlp.data(), dlp.data() + half, 1.0, lp.data(), lp_ref.data(), mask.data(), lp.data() + half,
                    lp_ref.data() + half, mask.data() + half, pairs, T, dc);
  logprobs_backward(dlogits.data(), dlp.data(), policy.logits(), b.targets.data(), static_cast<int>(N), V);
  policy.backward_from_logits(dlogits.data());
  policy_step(policy, opt);
}

// The prompt source of both RL methods: the PPO trainer's prompt pool for these options (level 1).
PPOTrainerOptions rl_problem_options(const MemoryOptions& o) {
  PPOTrainerOptions po;
  po.levels = {1};
  po.seed = o.seed;
  po.n_prompts = std::max(o.prompts, 64);
  return po;
}

// ---- ppo (with or without a reward model): one rollout and one PPO epoch of the real trainer ----
void step_ppo(MethodMemory& mm, const Config& cfg, const Tokenizer& tok, const LoadedCheckpoint* init,
              const MemoryOptions& o, bool reward_model) {
  PPOTrainerOptions po = rl_problem_options(o);
  po.batch_size = o.prompts * o.num_generations;  // one completion per prompt row
  po.steps = 1;
  po.freezing_actor_steps = 0;  // the step's policy update is part of the peak
  po.ppo.num_ppo_epochs = 1;  // the peak is reached in the first epoch; later epochs reuse the same buffers
  po.response_length = o.response_length;
  po.temperature = o.temperature;
  po.eval_problems = 0;
  po.save = false;
  po.quiet = true;
  po.use_reward_model = reward_model;
  PPOTrainer trainer(cfg, tok, po, init);
  // The same P*G prompt rows as GRPO's (prompt i repeated G times) and the same sampling seed: both rollouts then
  // sample the very same tokens, so every difference in the table is the algorithm's, not the sampled lengths'.
  std::vector<int> rows;
  for (int i = 0; i < o.prompts; i++)
    for (int g = 0; g < o.num_generations; g++) rows.push_back(i);
  const PPOExperience e = trainer.make_experience(0, rows);
  trainer.update(e);
  mm.sequences = e.batch.B; mm.columns = e.batch.T;
}

// ---- grpo: policy + reference, P prompts x G completions, one update of the GRPO trainer (grpo_update) ----
void step_grpo(MethodMemory& mm, const Config& cfg, const Tokenizer& tok, const LoadedCheckpoint* init,
               const MemoryOptions& o) {
  const int P = o.prompts, G = o.num_generations;
  Transformer<float> policy(cfg.model, Role::policy), reference(cfg.model, Role::reference);
  load_or_init(policy, init, cfg.train.seed);
  copy_weights(policy, reference);
  AdamW opt(policy.layout(), Role::policy);
  GRPOTrainOptions go;  // the trainer's defaults (one iteration, ref_batch 8), with this tool's shape
  go.grpo.num_generations = G;
  go.max_completion_length = o.response_length;
  go.temperature = o.temperature;
  // The prompt pool step_ppo's trainer builds from the same options (levels, n_prompts, seed).
  const PPOTrainerOptions po = rl_problem_options(o);
  const PromptPool pool(po.levels, po.n_prompts, po.seed, tok, cfg.model.max_seq_len, "memory", /*quiet=*/true);
  std::vector<std::vector<int>> prompts;
  std::vector<int64_t> answers;
  for (int i = 0; i < P; i++)
    for (int g = 0; g < G; g++) {  // rows i*G .. i*G+G-1: group i
      prompts.push_back(encode_prompt(pool[i], tok));
      answers.push_back(pool[i].final_answer);
    }
  RolloutOptions ro;
  ro.sampling.temperature = o.temperature;
  ro.sampling.max_new_tokens = o.response_length;
  ro.sampling.seed = ppo_sampling_seed(o.seed, 0);  // as step_ppo's rollout: the very same tokens
  ro.n_tokens = tok.vocab_size();
  ro.batch = P * G;
  const Rollout r = rollout(policy, prompts, ro);
  mm.sequences = r.B;
  mm.columns = 1;  // the packed batch's T (policy_batch.h): the longest sequence minus one
  for (int b = 0; b < r.B; b++) mm.columns = std::max(mm.columns, r.length(b) - 1);
  const std::vector<RewardBreakdown> scores = score_rollout(r, tok, answers, go.reward_rules);
  grpo_update(policy, &reference, opt, r, totals(scores), go, /*optimizer_step=*/0);
}

std::string cell(std::size_t bytes) { return bytes ? format_bytes(bytes) : "-"; }

std::string pad(const std::string& s, int w) {
  return s.size() >= static_cast<std::size_t>(w) ? s : std::string(w - s.size(), ' ') + s;
}

}  // namespace

bool is_state_category(Category c) {
  return c == Category::weights || c == Category::grads || c == Category::adam_m || c == Category::adam_v;
}

std::size_t MethodMemory::role_total(Role r) const {
  std::size_t s = 0;
  for (int c = 0; c < kNumCategories; c++) s += peak[static_cast<int>(r)][c];
  return s;
}
std::size_t MethodMemory::cells_total() const {
  std::size_t s = 0;
  for (int r = 0; r < kNumRoles; r++) s += role_total(static_cast<Role>(r));
  return s;
}
std::size_t MethodMemory::state_total() const {
  std::size_t s = 0;
  for (int r = 0; r < kNumRoles; r++)
    for (Category c : kState) s += peak[r][static_cast<int>(c)];
  return s;
}

void predict_state_bytes(MethodMemory& out, const ModelConfig& m) {
  const std::size_t f = sizeof(float);
  const std::size_t P = ParamLayout(m).total(), Rb = num_router_biases(m), head = m.d_model + 1;
  auto set = [&](Role r, std::size_t weights, std::size_t trained) {  // trained: grads = adam_m = adam_v
    std::size_t* row = out.predicted[static_cast<int>(r)];
    row[static_cast<int>(Category::weights)] = f * weights;
    row[static_cast<int>(Category::grads)] = row[static_cast<int>(Category::adam_m)] =
        row[static_cast<int>(Category::adam_v)] = f * trained;
  };
  for (int r = 0; r < kNumRoles; r++) set(static_cast<Role>(r), 0, 0);
  const std::string& k = out.method;
  if (k != "sft" && k != "dpo" && k != "ppo" && k != "ppo+rm" && k != "grpo")
    throw_error("memory: unknown method '", k, "' (known: sft, dpo, ppo, ppo+rm, grpo)");
  set(Role::policy, P + Rb, P);                                      // every method trains the policy
  if (k != "sft") set(Role::reference, P + Rb, 0);                   // frozen: weights only
  if (k == "ppo" || k == "ppo+rm") set(Role::critic, P + Rb + head, P + head);  // trained trunk + value head
  if (k == "ppo+rm") set(Role::reward, P + Rb + head, 0);            // frozen trunk + score head
}

std::vector<MethodMemory> measure_memory(const Config& cfg, const LoadedCheckpoint* init, const MemoryOptions& o) {
  if (o.prompts < 1) throw_error("memory: prompts = ", o.prompts, " must be >= 1");
  if (o.num_generations < 2)
    throw_error("memory: num_generations = ", o.num_generations, " must be >= 2 (GRPO compares completions within a group)");
  if (o.response_length < 1) throw_error("memory: response_length = ", o.response_length, " must be >= 1");
  if (!(o.temperature > 0)) throw_error("memory: temperature = ", o.temperature, " must be > 0");
  const Config c = init ? init->config : cfg;
  const Tokenizer tok = init ? init->tokenizer : Tokenizer();
  Ledger& L = Ledger::global();
  std::vector<MethodMemory> out;
  for (const std::string& method : o.methods) {
    MethodMemory mm;
    mm.method = method;
    predict_state_bytes(mm, c.model);  // also rejects an unknown method before anything runs
    // Bytes already held (by the caller) are the baseline: the step's figures are what it adds on top.
    std::size_t base[kNumRoles][kNumCategories];
    for (int r = 0; r < kNumRoles; r++)
      for (int k = 0; k < kNumCategories; k++) base[r][k] = L.current(static_cast<Role>(r), static_cast<Category>(k));
    const std::size_t base_total = L.current_total();
    L.reset_peaks();
    // Give the heap the previous method freed back to the kernel first: whether malloc keeps it resident depends on
    // the order of earlier allocations, and the RSS figures would carry it into this method's.
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    mm.rss_was_reset = reset_peak_rss();
    mm.rss_start = rss_bytes();
    Timer timer;
    if (method == "sft") step_sft(mm, c, tok, init, o);
    else if (method == "dpo") step_dpo(mm, c, tok, init, o);
    else if (method == "ppo") step_ppo(mm, c, tok, init, o, false);
    else if (method == "ppo+rm") step_ppo(mm, c, tok, init, o, true);
    else step_grpo(mm, c, tok, init, o);
    mm.seconds = timer.seconds();
    // Every buffer of the step is released by now; the peaks stay.
    for (int r = 0; r < kNumRoles; r++)
      for (int k = 0; k < kNumCategories; k++)
        mm.peak[r][k] = L.peak(static_cast<Role>(r), static_cast<Category>(k)) - base[r][k];
    mm.peak_total = L.peak_total() - base_total;
    mm.rss_peak = peak_rss_bytes();
    out.push_back(mm);
  }
  return out;
}

std::string memory_report(const std::vector<MethodMemory>& ms) {
  std::ostringstream os;
  const int W = 12;
  for (const MethodMemory& m : ms) {
    os << "== " << m.method << ": " << m.sequences << " sequences x " << m.columns << " columns, "
       << (m.seconds < 10 ? std::to_string(static_cast<int>(m.seconds * 1000)) + " ms" : std::to_string(static_cast<int>(m.seconds)) + " s")
       << " ==\n";
    os << "peak      ";
    for (int k = 0; k < kNumCategories; k++) os << pad(category_name(static_cast<Category>(k)), W);
    os << pad("total", W) << "\n";
    bool state_ok = true;
    for (int r = 0; r < kNumRoles; r++) {
      const Role role = static_cast<Role>(r);
      bool predicted_any = false;
      for (Category k : kState) predicted_any |= m.predicted[r][static_cast<int>(k)] != 0;
      if (m.role_total(role) == 0 && !predicted_any) continue;
      std::string name = role_name(role);
      os << name << std::string(10 - std::min<std::size_t>(10, name.size()), ' ');
      for (int k = 0; k < kNumCategories; k++) os << pad(cell(m.peak[r][k]), W);
      os << pad(cell(m.role_total(role)), W) << "\n";
      os << "  formula ";
      for (int k = 0; k < kNumCategories; k++) {
        const Category cat = static_cast<Category>(k);
        if (!is_state_category(cat)) { os << pad("", W); continue; }
        const bool eq = m.predicted[r][k] == m.peak[r][k];
        state_ok &= eq;
        os << pad((eq ? "= " : "!= ") + cell(m.predicted[r][k]), W);
      }
      os << "\n";
    }
    os << "sum of cell peaks " << format_bytes(m.cells_total()) << " | simultaneous ledger peak "
       << format_bytes(m.peak_total) << " | model state " << format_bytes(m.state_total())
       << (state_ok ? " (= formula, to the byte)" : " (DIFFERS from the formula)") << " | peak RSS "
       << format_bytes(m.rss_peak) << (m.rss_was_reset ? "" : " (process peak; could not reset)") << " (RSS at start "
       << format_bytes(m.rss_start) << ")\n\n";
  }
  const MethodMemory *ppo = nullptr, *grpo = nullptr, *ppo_rm = nullptr;
  for (const MethodMemory& m : ms) {
    if (m.method == "ppo") ppo = &m;
    if (m.method == "grpo") grpo = &m;
    if (m.method == "ppo+rm") ppo_rm = &m;
  }
  os << "summary      sequences   policy  reference     critic     reward      state  ledger peak   peak RSS\n";
  for (const MethodMemory& m : ms) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%-10s %11d %s %s %s %s %s %s %s\n", m.method.c_str(), m.sequences,
                  pad(cell(m.role_total(Role::policy)), 8).c_str(), pad(cell(m.role_total(Role::reference)), 10).c_str(),
                  pad(cell(m.role_total(Role::critic)), 10).c_str(), pad(cell(m.role_total(Role::reward)), 10).c_str(),
                  pad(cell(m.state_total()), 10).c_str(), pad(cell(m.peak_total), 12).c_str(),
                  pad(cell(m.rss_peak), 10).c_str());
    os << buf;
  }
  auto ratio = [&](const char* what, double g, double p) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "  %-28s %10s / %10s = %.3f  (GRPO needs %.0f%% less)\n", what,
                  format_bytes(static_cast<std::size_t>(g)).c_str(), format_bytes(static_cast<std::size_t>(p)).c_str(),
                  g / p, 100.0 * (1.0 - g / p));
    os << buf;
  };
  for (const MethodMemory* p : {ppo, ppo_rm}) {
    if (!p || !grpo) continue;
    os << "\nGRPO / " << (p == ppo ? "PPO" : "PPO with a reward model") << ":\n";
    ratio("simultaneous ledger peak", grpo->peak_total, p->peak_total);
    ratio("model state (weights+grads+adam)", grpo->state_total(), p->state_total());
    ratio("peak RSS", grpo->rss_peak, p->rss_peak);
  }
  return os.str();
}

}  // namespace tinyds
