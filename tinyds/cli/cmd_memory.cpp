// tinyds/cli/cmd_memory.cpp — `tinyds memory`: measured peak bytes of one sft / dpo / ppo / grpo step by model role
// and category, against the analytical model-state formula (posttrain/memory.h).
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/cli/config_options.h"
#include "tinyds/core/error.h"
#include "tinyds/posttrain/memory.h"

namespace tinyds {

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

nlohmann::json to_json(const MethodMemory& m) {
  nlohmann::json roles;
  for (int r = 0; r < kNumRoles; r++) {
    nlohmann::json row, pred;
    for (int c = 0; c < kNumCategories; c++) {
      row[category_name(static_cast<Category>(c))] = m.peak[r][c];
      if (is_state_category(static_cast<Category>(c))) pred[category_name(static_cast<Category>(c))] = m.predicted[r][c];
    }
    roles[role_name(static_cast<Role>(r))] = {{"peak", row}, {"formula", pred}};
  }
  return {{"method", m.method}, {"sequences", m.sequences}, {"columns", m.columns}, {"roles", roles},
          {"peak_total", m.peak_total}, {"state_total", m.state_total()}, {"rss_peak", m.rss_peak},
          {"rss_start", m.rss_start}, {"rss_was_reset", m.rss_was_reset}, {"seconds", m.seconds}};
}

}  // namespace

int cmd_memory(int argc, char** argv) {
  Config cfg = Config::preset(scan_preset(argc, argv, "small"));
  Args a("tinyds memory",
         "Runs ONE real optimisation step of each post-training method on the same policy config and batch shape and\n"
         "prints the ledger's peak bytes by model role (policy, reference, critic, reward) and category, the formula\n"
         "for the model-state cells, the process's peak RSS and the GRPO/PPO ratio. Every method gets prompts x\n"
         "num_generations sequences: GRPO as prompts x G completions, PPO as the same prompt rows (each prompt G times)\n"
         "with one completion per row and the same sampling seed, so both sample the very same tokens.");
  ConfigOptions co;
  co.add_to(a, cfg);
  a.remove("--seed");  // one seed, below: of the problems and of sampling (the weights are initialised from the preset's)
  MemoryOptions o;
  std::string init, methods = "sft,dpo,ppo,ppo+rm,grpo", json_out;
  a.add("--init", init, "start from this checkpoint's weights and config (default: a fresh init of --preset)");
  a.add("--prompts", o.prompts, "prompts per step");
  a.add("--num-generations", o.num_generations, "G: GRPO completions per prompt (every method gets prompts x G sequences)");
  a.add("--response-length", o.response_length, "max new tokens of a sampled completion (ppo, grpo)");
  a.add("--temperature", o.temperature, "sampling temperature (ppo, grpo)");
  a.add("--seed", o.seed, "seed of the problems and of sampling");
  a.add("--methods", methods, "comma-separated subset of sft,dpo,ppo,ppo+rm,grpo");
  a.add("--json", json_out, "also write the figures (bytes) to this JSON file");
  if (!a.parse(argc, argv)) return 0;
  co.finish(cfg);
  o.methods = split_commas(methods);
  if (o.methods.empty()) throw_error("option --methods: '", methods, "' names no method");
  std::unique_ptr<LoadedCheckpoint> ck;
  if (!init.empty()) ck = std::make_unique<LoadedCheckpoint>(load_checkpoint(init));
  const Config& c = ck ? ck->config : cfg;
  std::printf("tinyds memory: %s model (%.2fM parameters), %d prompts x %d generations = %d sequences per step, "
              "response_length %d\n\n", init.empty() ? c.name.c_str() : init.c_str(), c.num_params() / 1e6, o.prompts,
              o.num_generations, o.prompts * o.num_generations, o.response_length);
  const std::vector<MethodMemory> ms = measure_memory(cfg, ck.get(), o);
  std::printf("%s", memory_report(ms).c_str());
  if (!json_out.empty()) {
    nlohmann::json j = nlohmann::json::array();
    for (const MethodMemory& m : ms) j.push_back(to_json(m));
    std::ofstream f(json_out);
    if (!f) throw_error("cannot write ", json_out);
    f << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace tinyds
