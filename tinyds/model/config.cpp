// tinyds/model/config.cpp — presets, validation and JSON for Config.
#include "tinyds/model/config.h"

#include <limits>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/model/params.h"

namespace tinyds {

using json = nlohmann::json;

namespace {

// The DeepSeek-style parts of a preset: MLA, fine-grained MoE with a shared expert after n_dense_layers dense
// blocks, bias (auxiliary-loss-free) balancing, one MTP module.
void make_deepseek_style(ModelConfig& m, int q_rank, int kv_rank, int rope, int experts, int expert_hidden) {
  m.attention = AttentionKind::mla; m.n_kv_head = m.n_head;
  m.q_lora_rank = q_rank; m.kv_lora_rank = kv_rank; m.rope_dim = rope;
  m.n_routed_experts = experts; m.n_activated_experts = 2; m.n_shared_experts = 1; m.moe_inter_dim = expert_hidden;
  m.n_dense_layers = 1; m.balance = "bias";
  m.mtp_depth = 1;
}

}  // namespace

Config Config::preset(const std::string& name) {
  Config c;
  c.name = name;
  ModelConfig& m = c.model;
  TrainConfig& t = c.train;
  // "<preset>-dense" is the same size with the baseline architecture: multi-head (nano: grouped-query) attention,
  // a dense SwiGLU FFN in every block, no MTP. For comparisons and for the dense-only tests.
  const bool dense = name.size() > 6 && name.compare(name.size() - 6, 6, "-dense") == 0;
  const std::string base = dense ? name.substr(0, name.size() - 6) : name;
  if (base == "nano") {
    // Tests: two tiny layers so every code path runs in milliseconds.
    m.n_layer = 2; m.d_model = 32; m.attention = AttentionKind::gqa; m.n_head = 4; m.n_kv_head = 2;
    m.head_dim = 8; m.ffn_hidden = 64; m.max_seq_len = 64;
    t.batch_size = 2; t.seq_len = 16; t.steps = 20; t.warmup_steps = 2; t.eval_every = 0; t.ckpt_every = 0;
    t.log_every = 5; t.eval_problems = 20;
    c.data.n_train = 200;
    if (!dense) make_deepseek_style(m, /*Q*/ 8, /*L*/ 12, /*R*/ 4, /*E*/ 4, /*F_e*/ 16);
  } else if (base == "small") {
    // The demo model: small enough to take many steps per minute on 2 cores.
    m.n_layer = 4; m.d_model = 128; m.n_head = 4; m.n_kv_head = 4; m.head_dim = 32; m.ffn_hidden = 352;
    // Context: a level-3 problem is up to ~210 characters (question + worked answer); batches are cut to their
    // longest row, so the cap costs nothing on shorter problems.
    m.max_seq_len = 256;
    // Batch 8 and peak lr 7e-4: this model learns the arithmetic from many small steps, not from large batches
    // (notebooks/EXPERIMENTS.md, "Batch size" and "Learning rate").
    t.batch_size = 8; t.seq_len = 224; t.steps = 16000; t.lr = 7e-4f; t.min_lr = 1e-5f; t.warmup_steps = 100;
    t.eval_every = 4000; t.eval_problems = 200; t.ckpt_every = 4000; t.log_every = 400;
    c.data.n_train = 128000;
    // Calculator drills in the padding (data/pad_drills.h): more calculations at the same cost per step; the
    // word-problem errors were wrong arithmetic (notebooks/EXPERIMENTS.md, "Padding drills").
    c.data.pad_drills = true;
    // 32 more columns per batch, filled with drills only (each step slower, more drills per step), with a cosine
    // floor of 1e-5 (notebooks/EXPERIMENTS.md, "Drill columns").
    c.data.drill_columns = 32;
    // No weight decay; RoPE base 500 turns the slow pairs of MLA's 16-dim rope key faster over the ~200 positions
    // of a problem (notebooks/EXPERIMENTS.md, "Weight decay and RoPE base").
    t.weight_decay = 0.0f;
    m.rope_theta = 500.0f;
    // 8 experts of hidden 128, 2 active + 1 shared: 384 active hidden units per token, as the dense FFN's 352.
    if (!dense) make_deepseek_style(m, /*Q*/ 96, /*L*/ 64, /*R*/ 16, /*E*/ 8, /*F_e*/ 128);
    // Router-bias speed 1e-4 instead of V3's 1e-3: the bias moves by gamma every step whatever the batch, and with
    // 8 problems per step the loads it reacts to are noisy. At 1e-3 which seeds learned the arithmetic within 8000
    // steps was a draw (default seed 91.5 / 70.0%); at 1e-4 seeds 1337, 2 and 7 reached 99.5-100 / 84-95%
    // (notebooks/EXPERIMENTS.md, "Router-bias speed").
    m.bias_update_speed = 1e-4f;
  } else if (base == "base") {
    // The benchmark: C 256, 4 layers, B 16, T 128 (DeepSeek-style: MLA H 8, D 32, R 16, L 64, Q 128; 16 routed
    // experts top-2 + 1 shared, F 128; first layer dense; MTP depth 1).
    m.n_layer = 4; m.d_model = 256; m.n_head = 8; m.n_kv_head = 8; m.head_dim = 32; m.ffn_hidden = 683;
    m.max_seq_len = 128;
    t.batch_size = 16; t.seq_len = 128;
    if (!dense) make_deepseek_style(m, /*Q*/ 128, /*L*/ 64, /*R*/ 16, /*E*/ 16, /*F_e*/ 128);
  } else {
    throw_error("unknown preset '", name, "' (known presets: nano, small, base, and nano-dense, small-dense, base-dense)");
  }
  c.validate();
  return c;
}

std::vector<std::string> Config::preset_names() {
  return {"nano", "small", "base", "nano-dense", "small-dense", "base-dense"};
}

void Config::validate() const {
  const ModelConfig& m = model;
  auto need = [](bool ok, const char* field, long long value, const std::string& why) {
    if (!ok) throw_error("config: ", field, " = ", value, ": ", why);
  };
  need(m.vocab_size >= 2, "model.vocab_size", m.vocab_size, "must be at least 2");
  need(m.n_layer >= 1, "model.n_layer", m.n_layer, "must be at least 1");
  need(m.d_model >= 1, "model.d_model", m.d_model, "must be positive");
  need(m.n_head >= 1, "model.n_head", m.n_head, "must be positive");
  need(m.head_dim >= 2 && m.head_dim % 2 == 0, "model.head_dim", m.head_dim, "must be a positive even number (RoPE rotates pairs)");
  need(m.d_model % m.n_head == 0, "model.d_model", m.d_model,
       "must be divisible by model.n_head = " + std::to_string(m.n_head));
  need(m.n_kv_head >= 1 && m.n_head % m.n_kv_head == 0, "model.n_kv_head", m.n_kv_head,
       "must divide model.n_head = " + std::to_string(m.n_head));
  switch (m.attention) {
    case AttentionKind::mha:
      need(m.n_kv_head == m.n_head, "model.n_kv_head", m.n_kv_head, "must equal n_head for attention 'mha'"); break;
    case AttentionKind::mqa:
      need(m.n_kv_head == 1, "model.n_kv_head", m.n_kv_head, "must be 1 for attention 'mqa'"); break;
    case AttentionKind::gqa:
      need(m.n_kv_head > 1 && m.n_kv_head < m.n_head, "model.n_kv_head", m.n_kv_head,
           "must be between 2 and n_head-1 for attention 'gqa'"); break;
    case AttentionKind::mla:
      need(m.n_kv_head == m.n_head, "model.n_kv_head", m.n_kv_head, "must equal n_head for attention 'mla'");
      need(m.q_lora_rank >= 1, "model.q_lora_rank", m.q_lora_rank, "must be positive for attention 'mla'");
      need(m.kv_lora_rank >= 1, "model.kv_lora_rank", m.kv_lora_rank, "must be positive for attention 'mla'");
      need(m.rope_dim >= 2 && m.rope_dim % 2 == 0, "model.rope_dim", m.rope_dim,
           "must be a positive even number for attention 'mla' (RoPE rotates pairs)"); break;
  }
  if (m.attention != AttentionKind::mla) {
    need(m.q_lora_rank == 0, "model.q_lora_rank", m.q_lora_rank, "is only used with attention 'mla' (set it to 0)");
    need(m.kv_lora_rank == 0, "model.kv_lora_rank", m.kv_lora_rank, "is only used with attention 'mla' (set it to 0)");
    need(m.rope_dim == 0, "model.rope_dim", m.rope_dim, "is only used with attention 'mla' (set it to 0)");
  }
  need(m.ffn_hidden >= 1, "model.ffn_hidden", m.ffn_hidden, "must be positive");
  need(m.max_seq_len >= 2, "model.max_seq_len", m.max_seq_len, "must be at least 2");
  if (m.n_routed_experts != 0) {
    need(m.n_routed_experts >= 2, "model.n_routed_experts", m.n_routed_experts, "must be 0 (dense) or at least 2");
    need(m.n_activated_experts >= 1 && m.n_activated_experts <= m.n_routed_experts, "model.n_activated_experts",
         m.n_activated_experts, "must be in [1, n_routed_experts = " + std::to_string(m.n_routed_experts) + "]");
    need(m.n_shared_experts >= 0, "model.n_shared_experts", m.n_shared_experts, "must not be negative");
    need(m.moe_inter_dim >= 1, "model.moe_inter_dim", m.moe_inter_dim, "must be positive");
    need(m.n_dense_layers >= 0 && m.n_dense_layers <= m.n_layer, "model.n_dense_layers", m.n_dense_layers,
         "must be in [0, n_layer = " + std::to_string(m.n_layer) + "]");
    if (m.score_func != "sigmoid" && m.score_func != "softmax")
      throw_error("config: model.score_func = '", m.score_func, "': must be sigmoid or softmax");
    if (!(m.route_scale > 0)) throw_error("config: model.route_scale = ", m.route_scale, ": must be positive");
    need(m.n_expert_groups >= 1, "model.n_expert_groups", m.n_expert_groups, "must be at least 1 (1 = off)");
    if (m.n_expert_groups > 1) {
      need(m.n_routed_experts % m.n_expert_groups == 0, "model.n_expert_groups", m.n_expert_groups,
           "must divide n_routed_experts = " + std::to_string(m.n_routed_experts));
      need(m.n_limited_groups >= 1 && m.n_limited_groups <= m.n_expert_groups, "model.n_limited_groups",
           m.n_limited_groups, "must be in [1, n_expert_groups]");
      need(m.n_activated_experts <= m.n_limited_groups * (m.n_routed_experts / m.n_expert_groups),
           "model.n_activated_experts", m.n_activated_experts, "exceeds the experts of the n_limited_groups eligible groups");
    }
    try {
      parse_balance(m.balance);
    } catch (const Error& e) {
      throw_error("config: model.balance: ", e.what());
    }
    if (!(m.bias_update_speed >= 0)) throw_error("config: model.bias_update_speed = ", m.bias_update_speed, ": must not be negative");
    if (!(m.seq_aux_alpha >= 0)) throw_error("config: model.seq_aux_alpha = ", m.seq_aux_alpha, ": must not be negative");
    if (!(m.aux_alpha >= 0)) throw_error("config: model.aux_alpha = ", m.aux_alpha, ": must not be negative");
  }
  need(m.mtp_depth >= 0, "model.mtp_depth", m.mtp_depth, "must not be negative (0 = no MTP)");
  if (!(m.mtp_lambda >= 0)) throw_error("config: model.mtp_lambda = ", m.mtp_lambda, ": must not be negative");
  if (!(m.norm_eps > 0)) throw_error("config: model.norm_eps = ", m.norm_eps, ": must be positive");
  if (!(m.rope_theta > 0)) throw_error("config: model.rope_theta = ", m.rope_theta, ": must be positive");
  if (!(m.init_std > 0)) throw_error("config: model.init_std = ", m.init_std, ": must be positive");
  const TrainConfig& t = train;
  need(t.batch_size >= 1, "train.batch_size", t.batch_size, "must be positive");
  need(t.seq_len >= 2, "train.seq_len", t.seq_len, "must be at least 2");
  need(t.seq_len <= m.max_seq_len, "train.seq_len", t.seq_len,
       "must not exceed model.max_seq_len = " + std::to_string(m.max_seq_len));
  need(t.steps >= 0, "train.steps", t.steps, "must not be negative");
  need(t.ckpt_every >= 0, "train.ckpt_every", t.ckpt_every, "must not be negative (0 = only at the end)");
  need(t.eval_every >= 0, "train.eval_every", t.eval_every, "must not be negative (0 = only at the end)");
  need(t.eval_problems >= 0, "train.eval_problems", t.eval_problems, "must not be negative");
  need(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, "must not be negative");
  if (!(t.lr > 0)) throw_error("config: train.lr = ", t.lr, ": must be positive");
  if (!(t.min_lr >= 0 && t.min_lr <= t.lr)) throw_error("config: train.min_lr = ", t.min_lr, ": must be in [0, lr]");
  if (!(t.beta1 >= 0 && t.beta1 < 1)) throw_error("config: train.beta1 = ", t.beta1, ": must be in [0, 1)");
  if (!(t.beta2 >= 0 && t.beta2 < 1)) throw_error("config: train.beta2 = ", t.beta2, ": must be in [0, 1)");
  if (!(t.weight_decay >= 0)) throw_error("config: train.weight_decay = ", t.weight_decay, ": must not be negative");
  if (!(t.grad_clip >= 0)) throw_error("config: train.grad_clip = ", t.grad_clip, ": must not be negative (0 disables)");
  for (int level : data.levels) need(level >= 1 && level <= 4, "data.levels", level, "each level must be 1..4");
  need(!data.levels.empty(), "data.levels", 0, "needs at least one level");
  need(data.n_train >= 1, "data.n_train", data.n_train, "must be positive");
  if (!data.level_weights.empty()) {
    need(data.level_weights.size() == data.levels.size(), "data.level_weights", static_cast<long long>(data.level_weights.size()),
         "entries: needs one per entry of data.levels (" + std::to_string(data.levels.size()) + "), or none for equal shares");
    for (int w : data.level_weights) need(w >= 1, "data.level_weights", w, "each weight must be a positive integer");
  }
  need(data.drill_columns >= 0, "data.drill_columns", data.drill_columns, "must not be negative");
  if (!(data.distractors >= 0 && data.distractors <= 1))
    throw_error("config: data.distractors = ", data.distractors, ": must be a share in [0, 1]");
}

int64_t Config::num_params() const { return ParamLayout(model).total(); }

bool is_moe_layer(const ModelConfig& m, int l) { return m.n_routed_experts > 0 && l >= m.n_dense_layers; }

BalanceModes parse_balance(const std::string& s) {
  BalanceModes b;
  if (s == "none") return b;
  std::size_t start = 0;
  while (true) {
    std::size_t plus = s.find('+', start);
    std::string part = s.substr(start, plus == std::string::npos ? std::string::npos : plus - start);
    bool* flag = part == "bias" ? &b.bias : part == "seqaux" ? &b.seqaux : part == "aux" ? &b.aux : nullptr;
    if (!flag) throw_error("'", s, "': unknown balance mode '", part, "' (expected none or a '+'-joined combination of bias, seqaux, aux)");
    if (*flag) throw_error("'", s, "': balance mode '", part, "' is given twice");
    *flag = true;
    if (plus == std::string::npos) return b;
    start = plus + 1;
  }
}

std::string levels_text(const DataConfig& d) {
  std::string s = json(d.levels).dump();
  if (d.level_weights.empty()) return s;
  s += " (";
  for (std::size_t i = 0; i < d.level_weights.size(); i++) s += (i ? ":" : "") + std::to_string(d.level_weights[i]);
  return s + ")";
}

const char* attention_kind_name(AttentionKind k) {
  switch (k) {
    case AttentionKind::mha: return "mha";
    case AttentionKind::gqa: return "gqa";
    case AttentionKind::mqa: return "mqa";
    case AttentionKind::mla: return "mla";
  }
  return "?";
}

AttentionKind parse_attention_kind(const std::string& s) {
  if (s == "mha") return AttentionKind::mha;
  if (s == "gqa") return AttentionKind::gqa;
  if (s == "mqa") return AttentionKind::mqa;
  if (s == "mla") return AttentionKind::mla;
  throw_error("unknown attention kind '", s, "' (expected mha, gqa, mqa or mla)");
}

// ----------------------------------------------------------------------------------------------
// JSON. Every field is written; on read, unknown fields and wrong types are errors naming the field.
// ----------------------------------------------------------------------------------------------
namespace {

// nlohmann's get<T> converts silently (true -> 1, 2.7 -> 2, -1 -> 2^64-1): check the JSON type first.
template <typename T>
bool json_type_fits(const json& v) {
  if constexpr (std::is_same_v<T, bool>) return v.is_boolean();
  else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) return false;
    if constexpr (std::is_unsigned_v<T>) return v.is_number_unsigned();
    else return v.get<int64_t>() >= std::numeric_limits<T>::min() && v.get<int64_t>() <= std::numeric_limits<T>::max();
  } else if constexpr (std::is_floating_point_v<T>) return v.is_number();
  else if constexpr (std::is_same_v<T, std::string>) return v.is_string();
  else return true;  // containers: element conversion errors are caught below
}

template <typename T>
void read_field(const json& j, const char* key, T& out, const std::string& where) {
  if (!j.contains(key)) return;  // missing: keep the default
  const json& v = j.at(key);
  bool ok = json_type_fits<T>(v);
  if constexpr (std::is_same_v<T, std::vector<int>>) {
    ok = v.is_array();
    for (const json& e : v) ok = ok && e.is_number_integer();
  }
  if (ok) {
    try {
      out = v.get<T>();
      return;
    } catch (const json::exception&) {
    }
  }
  throw_error(where, ": field '", key, "' has the wrong type or range (", v.dump(), ")");
}

// data.drill_frac (steps on bare drills) and data.length_group (rows grouped by length) were experiment options,
// removed after they measured no gain (notebooks/EXPERIMENTS.md). Checkpoints written before carry them, at 0
// (off) unless a run turned them on: 0 (and length_group 1, also off) is accepted and ignored; any other value is
// an error, since the run it describes can no longer be reproduced or resumed.
void accept_removed_data_fields(const json& data, const std::string& where) {
  for (const char* key : {"drill_frac", "length_group"}) {
    if (!data.contains(key)) continue;
    const json& v = data.at(key);
    const bool off = v.is_number() && (v.get<double>() == 0 || (std::string(key) == "length_group" && v.get<double>() == 1));
    if (!off)
      throw_error(where, ": field '", key, "' = ", v.dump(), " is no longer supported (the option was removed; it measured ",
                  "no gain, see notebooks/EXPERIMENTS.md): only 0 (off) is accepted, from older checkpoints");
  }
}

void reject_unknown(const json& j, std::initializer_list<const char*> known, const std::string& where) {
  if (!j.is_object()) throw_error(where, ": expected a JSON object, got ", j.dump());
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (const char* k : known) ok = ok || it.key() == k;
    if (!ok) throw_error(where, ": unknown field '", it.key(), "'");
  }
}

}  // namespace

json model_config_to_json(const ModelConfig& m) {
  return json{{"vocab_size", m.vocab_size}, {"max_seq_len", m.max_seq_len}, {"n_layer", m.n_layer},
              {"d_model", m.d_model}, {"attention", attention_kind_name(m.attention)}, {"n_head", m.n_head},
              {"n_kv_head", m.n_kv_head}, {"head_dim", m.head_dim}, {"q_lora_rank", m.q_lora_rank},
              {"kv_lora_rank", m.kv_lora_rank}, {"rope_dim", m.rope_dim}, {"ffn_hidden", m.ffn_hidden},
              {"n_routed_experts", m.n_routed_experts}, {"n_activated_experts", m.n_activated_experts},
              {"n_shared_experts", m.n_shared_experts}, {"moe_inter_dim", m.moe_inter_dim},
              {"n_dense_layers", m.n_dense_layers}, {"score_func", m.score_func}, {"route_scale", m.route_scale},
              {"n_expert_groups", m.n_expert_groups}, {"n_limited_groups", m.n_limited_groups},
              {"balance", m.balance}, {"bias_update_speed", m.bias_update_speed},
              {"seq_aux_alpha", m.seq_aux_alpha}, {"aux_alpha", m.aux_alpha}, {"mtp_depth", m.mtp_depth},
              {"mtp_lambda", m.mtp_lambda},
              {"rope_theta", m.rope_theta}, {"norm_eps", m.norm_eps}, {"init_std", m.init_std}};
}

ModelConfig model_config_from_json(const json& j, const std::string& where) {
  reject_unknown(j, {"vocab_size", "max_seq_len", "n_layer", "d_model", "attention", "n_head", "n_kv_head",
                     "head_dim", "q_lora_rank", "kv_lora_rank", "rope_dim", "ffn_hidden", "n_routed_experts", "n_activated_experts", "n_shared_experts",
                     "moe_inter_dim", "n_dense_layers", "score_func", "route_scale", "n_expert_groups",
                     "n_limited_groups", "balance", "bias_update_speed", "seq_aux_alpha", "aux_alpha", "mtp_depth",
                     "mtp_lambda", "rope_theta", "norm_eps", "init_std"}, where);
  ModelConfig m;
  read_field(j, "vocab_size", m.vocab_size, where);
  read_field(j, "max_seq_len", m.max_seq_len, where);
  read_field(j, "n_layer", m.n_layer, where);
  read_field(j, "d_model", m.d_model, where);
  std::string kind = attention_kind_name(m.attention);
  read_field(j, "attention", kind, where);
  try {
    m.attention = parse_attention_kind(kind);
  } catch (const Error& e) {
    throw_error(where, ": ", e.what());
  }
  read_field(j, "n_head", m.n_head, where);
  read_field(j, "n_kv_head", m.n_kv_head, where);
  read_field(j, "head_dim", m.head_dim, where);
  read_field(j, "q_lora_rank", m.q_lora_rank, where);
  read_field(j, "kv_lora_rank", m.kv_lora_rank, where);
  read_field(j, "rope_dim", m.rope_dim, where);
  read_field(j, "ffn_hidden", m.ffn_hidden, where);
  read_field(j, "n_routed_experts", m.n_routed_experts, where);
  read_field(j, "n_activated_experts", m.n_activated_experts, where);
  read_field(j, "n_shared_experts", m.n_shared_experts, where);
  read_field(j, "moe_inter_dim", m.moe_inter_dim, where);
  read_field(j, "n_dense_layers", m.n_dense_layers, where);
  read_field(j, "score_func", m.score_func, where);
  read_field(j, "route_scale", m.route_scale, where);
  read_field(j, "n_expert_groups", m.n_expert_groups, where);
  read_field(j, "n_limited_groups", m.n_limited_groups, where);
  read_field(j, "balance", m.balance, where);
  read_field(j, "bias_update_speed", m.bias_update_speed, where);
  read_field(j, "seq_aux_alpha", m.seq_aux_alpha, where);
  read_field(j, "aux_alpha", m.aux_alpha, where);
  read_field(j, "mtp_depth", m.mtp_depth, where);
  read_field(j, "mtp_lambda", m.mtp_lambda, where);
  read_field(j, "rope_theta", m.rope_theta, where);
  read_field(j, "norm_eps", m.norm_eps, where);
  read_field(j, "init_std", m.init_std, where);
  return m;
}

json config_to_json(const Config& c) {
  const TrainConfig& t = c.train;
  return json{{"name", c.name},
              {"model", model_config_to_json(c.model)},
              {"train", {{"batch_size", t.batch_size}, {"seq_len", t.seq_len}, {"steps", t.steps}, {"lr", t.lr},
                         {"min_lr", t.min_lr}, {"warmup_steps", t.warmup_steps}, {"beta1", t.beta1},
                         {"beta2", t.beta2}, {"adam_eps", t.adam_eps}, {"weight_decay", t.weight_decay},
                         {"grad_clip", t.grad_clip}, {"eval_every", t.eval_every},
                         {"eval_problems", t.eval_problems}, {"ckpt_every", t.ckpt_every},
                         {"log_every", t.log_every}, {"seed", t.seed}}},
              {"data", {{"levels", c.data.levels}, {"level_weights", c.data.level_weights}, {"n_train", c.data.n_train},
                        {"pad_drills", c.data.pad_drills},
                        {"drill_columns", c.data.drill_columns}, {"distractors", c.data.distractors}}}};
}

Config config_from_json(const json& j, const std::string& where) {
  reject_unknown(j, {"name", "model", "train", "data"}, where);
  Config c;
  read_field(j, "name", c.name, where);
  if (j.contains("model")) c.model = model_config_from_json(j["model"], where + ": model");
  if (j.contains("train")) {
    const json& tj = j["train"];
    std::string w = where + ": train";
    reject_unknown(tj, {"batch_size", "seq_len", "steps", "lr", "min_lr", "warmup_steps", "beta1", "beta2",
                        "adam_eps", "weight_decay", "grad_clip", "eval_every", "eval_problems", "ckpt_every",
                        "log_every", "seed"}, w);
    TrainConfig& t = c.train;
    read_field(tj, "batch_size", t.batch_size, w); read_field(tj, "seq_len", t.seq_len, w);
    read_field(tj, "steps", t.steps, w); read_field(tj, "lr", t.lr, w); read_field(tj, "min_lr", t.min_lr, w);
    read_field(tj, "warmup_steps", t.warmup_steps, w); read_field(tj, "beta1", t.beta1, w);
    read_field(tj, "beta2", t.beta2, w); read_field(tj, "adam_eps", t.adam_eps, w);
    read_field(tj, "weight_decay", t.weight_decay, w); read_field(tj, "grad_clip", t.grad_clip, w);
    read_field(tj, "eval_every", t.eval_every, w); read_field(tj, "eval_problems", t.eval_problems, w);
    read_field(tj, "ckpt_every", t.ckpt_every, w); read_field(tj, "log_every", t.log_every, w);
    read_field(tj, "seed", t.seed, w);
  }
  if (j.contains("data")) {
    std::string w = where + ": data";
    reject_unknown(j["data"], {"levels", "level_weights", "n_train", "drill_frac", "length_group", "pad_drills", "drill_columns",
                              "distractors"}, w);
    accept_removed_data_fields(j["data"], w);
    read_field(j["data"], "levels", c.data.levels, w);
    read_field(j["data"], "level_weights", c.data.level_weights, w);
    read_field(j["data"], "n_train", c.data.n_train, w);
    read_field(j["data"], "pad_drills", c.data.pad_drills, w);
    read_field(j["data"], "drill_columns", c.data.drill_columns, w);
    read_field(j["data"], "distractors", c.data.distractors, w);
  }
  c.validate();
  return c;
}

}  // namespace tinyds
