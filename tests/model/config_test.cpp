// tests/model/config_test.cpp — Config presets, validation messages and the JSON round trip.
//
// Each invalid config starts from a valid preset and breaks exactly one field, so the error can only come
// from that field; the message must name the field and the offending value.
#include <doctest/doctest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "tinyds/core/error.h"
#include "tinyds/model/config.h"

using tinyds::AttentionKind;
using tinyds::Config;
using tinyds::ModelConfig;
using tinyds::parse_balance;
using json = nlohmann::json;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const tinyds::Error& e) {
    return e.what();
  }
  return "";
}

void check_error(const std::string& msg, const std::vector<std::string>& needles) {
  REQUIRE_MESSAGE(!msg.empty(), "expected a tinyds::Error");
  for (const std::string& n : needles) CHECK_MESSAGE(msg.find(n) != std::string::npos, "'", n, "' not in: ", msg);
}

// Every field of the config, compared one by one (Config has no operator==).
void check_equal(const Config& a, const Config& b) {
  CHECK(a.name == b.name);
  const auto &m = a.model, &n = b.model;
  CHECK(m.vocab_size == n.vocab_size); CHECK(m.max_seq_len == n.max_seq_len); CHECK(m.n_layer == n.n_layer);
  CHECK(m.d_model == n.d_model); CHECK(m.attention == n.attention); CHECK(m.n_head == n.n_head);
  CHECK(m.n_kv_head == n.n_kv_head); CHECK(m.head_dim == n.head_dim); CHECK(m.ffn_hidden == n.ffn_hidden);
  CHECK(m.rope_theta == n.rope_theta); CHECK(m.norm_eps == n.norm_eps); CHECK(m.init_std == n.init_std);
  const auto &t = a.train, &u = b.train;
  CHECK(t.batch_size == u.batch_size); CHECK(t.seq_len == u.seq_len); CHECK(t.steps == u.steps);
  CHECK(t.lr == u.lr); CHECK(t.min_lr == u.min_lr); CHECK(t.warmup_steps == u.warmup_steps);
  CHECK(t.beta1 == u.beta1); CHECK(t.beta2 == u.beta2); CHECK(t.adam_eps == u.adam_eps);
  CHECK(t.weight_decay == u.weight_decay); CHECK(t.grad_clip == u.grad_clip); CHECK(t.eval_every == u.eval_every);
  CHECK(t.eval_problems == u.eval_problems); CHECK(t.ckpt_every == u.ckpt_every); CHECK(t.log_every == u.log_every);
  CHECK(t.seed == u.seed);
  CHECK(a.data.levels == b.data.levels); CHECK(a.data.level_weights == b.data.level_weights);
  CHECK(a.data.n_train == b.data.n_train);
  CHECK(a.data.pad_drills == b.data.pad_drills); CHECK(a.data.drill_columns == b.data.drill_columns);
  CHECK(a.data.distractors == b.data.distractors);
}

}  // namespace

TEST_CASE("model/config: presets validate and base is the benchmark shape") {
  for (const std::string& name : Config::preset_names()) {
    CAPTURE(name);
    Config c = Config::preset(name);
    CHECK(c.name == name);
    CHECK_NOTHROW(c.validate());
    CHECK(c.num_params() > 0);
  }
  CHECK(Config::preset_names() ==
        std::vector<std::string>{"nano", "small", "base", "nano-dense", "small-dense", "base-dense"});
  // base is the benchmark shape: C 256, 4 layers, first dense, MLA H 8 D 32 R 16 L 64 Q 128, 16 routed
  // experts top-2 + 1 shared of F 128, MTP depth 1, B 16, T 128, vocab 128.
  Config base = Config::preset("base");
  const ModelConfig& m = base.model;
  CHECK(m.d_model == 256);
  CHECK(m.n_layer == 4);
  CHECK(m.n_dense_layers == 1);
  CHECK(m.attention == AttentionKind::mla);
  CHECK(m.n_head == 8); CHECK(m.head_dim == 32); CHECK(m.rope_dim == 16);
  CHECK(m.kv_lora_rank == 64); CHECK(m.q_lora_rank == 128);
  CHECK(m.n_routed_experts == 16); CHECK(m.n_activated_experts == 2); CHECK(m.n_shared_experts == 1);
  CHECK(m.moe_inter_dim == 128);
  CHECK(m.balance == "bias");
  CHECK(m.mtp_depth == 1);
  CHECK(m.vocab_size == 128);
  CHECK(base.train.batch_size == 16);
  CHECK(base.train.seq_len == 128);
  // The -dense twin has the same sizes with the baseline architecture.
  Config dense = Config::preset("base-dense");
  CHECK(dense.model.d_model == 256);
  CHECK(dense.model.attention == AttentionKind::mha);
  CHECK(dense.model.n_routed_experts == 0);
  CHECK(dense.model.mtp_depth == 0);
}

TEST_CASE("model/config: MoE and MTP fields are validated with the field named") {
  Config c = Config::preset("nano");
  c.model.n_activated_experts = 9;
  check_error(error_of([&] { c.validate(); }), {"model.n_activated_experts", "9"});
  c = Config::preset("nano");
  c.model.balance = "bias+magic";
  check_error(error_of([&] { c.validate(); }), {"model.balance", "magic"});
  c = Config::preset("nano");
  c.model.balance = "bias+bias";
  check_error(error_of([&] { c.validate(); }), {"model.balance", "twice"});
  c = Config::preset("nano");
  c.model.score_func = "relu";
  check_error(error_of([&] { c.validate(); }), {"model.score_func", "relu"});
  c = Config::preset("nano");
  c.model.n_expert_groups = 3;  // does not divide E = 4
  check_error(error_of([&] { c.validate(); }), {"model.n_expert_groups", "3"});
  c = Config::preset("nano");
  c.model.mtp_depth = -1;
  check_error(error_of([&] { c.validate(); }), {"model.mtp_depth", "-1"});
  CHECK(parse_balance("seqaux+bias").bias);
  CHECK(parse_balance("seqaux+bias").seqaux);
  CHECK_FALSE(parse_balance("seqaux+bias").aux);
  CHECK_FALSE(parse_balance("none").bias);
}

TEST_CASE("model/config: unknown preset lists the known ones") {
  std::string m = error_of([] { Config::preset("tiny"); });
  check_error(m, {"'tiny'"});
  for (const std::string& name : Config::preset_names()) CHECK_MESSAGE(m.find(name) != std::string::npos, m);
}

TEST_CASE("model/config: validation errors name the field and the value") {
  struct Case { const char* what; std::function<void(Config&)> edit; std::vector<std::string> needles; };
  const Case cases[] = {
      {"C not divisible by heads", [](Config& c) { c.model.d_model = 250; }, {"model.d_model", "250", "n_head"}},
      {"n_kv_head not dividing n_head", [](Config& c) {
         c.model.attention = AttentionKind::gqa; c.model.n_head = 8; c.model.n_kv_head = 3; },
       {"model.n_kv_head", "3", "8"}},
      {"mha with n_kv != n_head", [](Config& c) {
         c.model.attention = AttentionKind::mha; c.model.n_head = 8; c.model.n_kv_head = 4; },
       {"model.n_kv_head", "4", "mha"}},
      {"mqa with n_kv != 1", [](Config& c) {
         c.model.attention = AttentionKind::mqa; c.model.n_head = 8; c.model.n_kv_head = 2; },
       {"model.n_kv_head", "2", "mqa"}},
      {"gqa with n_kv == n_head", [](Config& c) {
         c.model.attention = AttentionKind::gqa; c.model.n_head = 8; c.model.n_kv_head = 8; },
       {"model.n_kv_head", "8", "gqa"}},
      {"odd head_dim", [](Config& c) { c.model.head_dim = 31; }, {"model.head_dim", "31"}},
      {"seq_len > max_seq_len", [](Config& c) { c.train.seq_len = c.model.max_seq_len + 1; },
       {"train.seq_len", "129", "max_seq_len", "128"}},
      {"level too high", [](Config& c) { c.data.levels = {1, 5}; }, {"data.levels", "5"}},
      {"level zero", [](Config& c) { c.data.levels = {0}; }, {"data.levels", "0"}},
      {"no levels", [](Config& c) { c.data.levels.clear(); }, {"data.levels"}},
      {"a weight per level", [](Config& c) { c.data.levels = {1, 2}; c.data.level_weights = {2, 1, 1}; },
       {"data.level_weights", "3", "one per entry of data.levels (2)"}},
      {"zero weight", [](Config& c) { c.data.levels = {1, 2}; c.data.level_weights = {2, 0}; },
       {"data.level_weights", "0", "positive"}},
      {"negative drill columns", [](Config& c) { c.data.drill_columns = -3; }, {"data.drill_columns", "-3"}},
      {"distractor share above 1", [](Config& c) { c.data.distractors = 1.5; }, {"data.distractors", "1.5"}},
      {"zero layers", [](Config& c) { c.model.n_layer = 0; }, {"model.n_layer", "0"}},
      {"negative lr", [](Config& c) { c.train.lr = -1.0f; }, {"train.lr", "-1"}},
      {"min_lr above lr", [](Config& c) { c.train.min_lr = 1.0f; }, {"train.min_lr", "1"}},
      {"beta2 = 1", [](Config& c) { c.train.beta2 = 1.0f; }, {"train.beta2", "1"}},
      {"zero batch", [](Config& c) { c.train.batch_size = 0; }, {"train.batch_size", "0"}},
  };
  for (const Case& k : cases) {
    CAPTURE(std::string(k.what));
    Config c = Config::preset("base");  // base: C 256, H 8, n_kv 8, D 32, max_seq_len 128
    k.edit(c);
    check_error(error_of([&] { c.validate(); }), k.needles);
  }
}

TEST_CASE("model/config: levels_text shows the level weights only when set") {
  tinyds::DataConfig d;
  d.levels = {1, 2};
  CHECK(tinyds::levels_text(d) == "[1,2]");
  d.level_weights = {2, 1};
  CHECK(tinyds::levels_text(d) == "[1,2] (2:1)");
}

TEST_CASE("model/config: JSON round trip gives back the same config") {
  for (const std::string& name : Config::preset_names()) {
    CAPTURE(name);
    Config c = Config::preset(name);
    Config back = tinyds::config_from_json(tinyds::config_to_json(c), "test");
    check_equal(c, back);
  }
  // Non-default values everywhere it matters, and through text (as stored in checkpoint metadata).
  Config c = Config::preset("nano-dense");
  c.name = "custom run";
  c.model.attention = AttentionKind::mqa;
  c.model.n_kv_head = 1;
  c.model.rope_theta = 500000.0f;
  c.model.norm_eps = 1e-6f;
  c.train.lr = 1.234e-3f;
  c.train.seed = 0xFFFFFFFFFFFFull;
  c.data.levels = {1, 2, 4};
  c.data.level_weights = {3, 2, 1};
  c.data.pad_drills = true;
  c.data.drill_columns = 12;
  c.data.distractors = 0.375;
  std::string text = tinyds::config_to_json(c).dump();
  check_equal(c, tinyds::config_from_json(json::parse(text), "test"));
  // ModelConfig alone.
  tinyds::ModelConfig m = tinyds::model_config_from_json(tinyds::model_config_to_json(c.model), "test");
  CHECK(m.attention == AttentionKind::mqa);
  CHECK(m.rope_theta == c.model.rope_theta);
}

TEST_CASE("model/config: the removed data fields drill_frac and length_group are read from older checkpoints only when off") {
  const json j = tinyds::config_to_json(Config::preset("nano-dense"));
  CHECK(!j["data"].contains("drill_frac"));  // no longer written
  CHECK(!j["data"].contains("length_group"));
  // A checkpoint written before they were removed holds them at 0 (off): accepted, and the config is unchanged.
  json old = j;
  old["data"]["drill_frac"] = 0.0;
  old["data"]["length_group"] = 0;
  check_equal(tinyds::config_from_json(j, "new"), tinyds::config_from_json(old, "old"));
  old["data"]["length_group"] = 1;  // grouping over one step was off too
  check_equal(tinyds::config_from_json(j, "new"), tinyds::config_from_json(old, "old"));
  // A run that had them on cannot be reproduced any more: an error naming the field and its value.
  json bad = j;
  bad["data"]["drill_frac"] = 0.5;
  check_error(error_of([&] { tinyds::config_from_json(bad, "ckpt.safetensors"); }),
              {"ckpt.safetensors", "data", "'drill_frac'", "0.5", "no longer supported"});
  bad = j;
  bad["data"]["length_group"] = 16;
  check_error(error_of([&] { tinyds::config_from_json(bad, "ckpt.safetensors"); }),
              {"ckpt.safetensors", "data", "'length_group'", "16", "no longer supported"});
}

TEST_CASE("model/config: JSON unknown and wrong-typed fields are errors naming the field") {
  json j = tinyds::config_to_json(Config::preset("nano-dense"));
  json bad = j;
  bad["model"]["n_layers"] = 3;  // typo of n_layer
  check_error(error_of([&] { tinyds::config_from_json(bad, "ckpt.safetensors"); }),
              {"ckpt.safetensors", "model", "'n_layers'"});
  bad = j;
  bad["trian"] = json::object();
  check_error(error_of([&] { tinyds::config_from_json(bad, "cfg"); }), {"cfg", "'trian'"});
  bad = j;
  bad["train"]["lr"] = "fast";
  check_error(error_of([&] { tinyds::config_from_json(bad, "cfg"); }), {"cfg", "train", "'lr'", "fast"});
  bad = j;
  bad["model"]["d_model"] = json::array({32});
  check_error(error_of([&] { tinyds::config_from_json(bad, "cfg"); }), {"cfg", "'d_model'"});
  bad = j;
  bad["data"]["levels"] = "1,2";
  check_error(error_of([&] { tinyds::config_from_json(bad, "cfg"); }), {"cfg", "'levels'"});
  bad = j;
  bad["model"]["attention"] = "mla";
  check_error(error_of([&] { tinyds::config_from_json(bad, "cfg"); }), {"'mla'"});
  // A JSON config that parses but is inconsistent fails validation, naming the field.
  bad = j;
  bad["train"]["seq_len"] = 1000;
  check_error(error_of([&] { tinyds::config_from_json(bad, "cfg"); }), {"train.seq_len", "1000"});
  // Not an object at all.
  check_error(error_of([&] { tinyds::config_from_json(json::array(), "cfg"); }), {"cfg", "object"});
}
