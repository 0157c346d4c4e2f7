// tinyds/train/checkpoint.cpp — see checkpoint.h.
#include "tinyds/train/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/train/safetensors.h"

namespace tinyds {

using json = nlohmann::json;

void save_checkpoint(const std::string& path, const Config& config, const Tokenizer& tok,
                     const Transformer<float>& model, const AdamW* opt, const TrainState& state) {
  SafeTensors st;
  st.metadata["format"] = "tinyds";
  st.metadata["format_version"] = "1";
  st.metadata["config"] = config_to_json(config).dump();
  st.metadata["tokenizer"] = tok.to_json().dump();
  st.metadata["train_state"] = json{{"step", state.step}, {"adam_t", state.adam_t}}.dump();
  for (const TensorSpec& t : model.layout().tensors()) {
    st.put_f32(t.name, t.shape, model.params() + t.offset);
    if (opt) {
      st.put_f32("adam_m." + t.name, t.shape, const_cast<AdamW*>(opt)->m() + t.offset);
      st.put_f32("adam_v." + t.name, t.shape, const_cast<AdamW*>(opt)->v() + t.offset);
    }
  }
  // Buffers: each MoE layer's router bias (E), not a parameter (no Adam moments).
  const std::vector<std::string> names = model.moe_bias_names();
  const int64_t E = model.config().n_routed_experts;
  for (std::size_t i = 0; i < names.size(); i++) st.put_f32(names[i], {E}, model.moe_bias() + i * E);
  write_safetensors(path, st);
}

namespace {

json parse_meta(const SafeTensors& st, const std::string& key, const std::string& path) {
  auto it = st.metadata.find(key);
  if (it == st.metadata.end()) throw_error(path, ": not a tinyds checkpoint (no '", key, "' in __metadata__)");
  try {
    return json::parse(it->second);
  } catch (const json::exception& e) {
    throw_error(path, ": __metadata__ '", key, "' is not valid JSON (", e.what(), ")");
  }
}

}  // namespace

LoadedCheckpoint load_checkpoint(const std::string& path) {
  SafeTensors st = read_safetensors(path);  // validates the container itself
  LoadedCheckpoint ck;
  ck.path = path;
  auto fmt = st.metadata.find("format");
  if (fmt == st.metadata.end() || fmt->second != "tinyds")
    throw_error(path, ": not a tinyds checkpoint (__metadata__ 'format' is not \"tinyds\")");
  auto ver = st.metadata.find("format_version");
  if (ver == st.metadata.end() || ver->second != "1")
    throw_error(path, ": unsupported checkpoint format_version (this tinyds reads version 1)");
  ck.config = config_from_json(parse_meta(st, "config", path), path + ": config");
  ck.tokenizer = Tokenizer::from_json(parse_meta(st, "tokenizer", path), path + ": tokenizer");
  if (ck.tokenizer.vocab_size() > ck.config.model.vocab_size)
    throw_error(path, ": tokenizer has ", ck.tokenizer.vocab_size(), " tokens but model.vocab_size is ",
                ck.config.model.vocab_size);
  json ts = parse_meta(st, "train_state", path);
  try {
    ck.state.step = ts.at("step").get<int>();
    ck.state.adam_t = ts.at("adam_t").get<int>();
  } catch (const json::exception&) {
    throw_error(path, ": __metadata__ 'train_state' needs integer fields 'step' and 'adam_t'");
  }

  ParamLayout layout(ck.config.model);
  ck.params.assign(layout.total(), 0.0f);
  ck.has_optimizer = st.has("adam_m." + layout.tensors()[0].name);
  if (ck.has_optimizer) { ck.adam_m.assign(layout.total(), 0.0f); ck.adam_v.assign(layout.total(), 0.0f); }
  for (const TensorSpec& t : layout.tensors()) {
    std::vector<float> w = st.get_f32(t.name, t.shape, path);  // errors name a missing / mis-shaped tensor
    std::copy(w.begin(), w.end(), ck.params.begin() + t.offset);
    if (ck.has_optimizer) {
      std::vector<float> m = st.get_f32("adam_m." + t.name, t.shape, path);
      std::vector<float> v = st.get_f32("adam_v." + t.name, t.shape, path);
      std::copy(m.begin(), m.end(), ck.adam_m.begin() + t.offset);
      std::copy(v.begin(), v.end(), ck.adam_v.begin() + t.offset);
    }
  }
  for (float x : ck.params)
    if (!std::isfinite(x)) throw_error(path, ": parameters contain NaN or Inf (corrupted or diverged checkpoint)");
  // The MoE router biases, in the model's order.
  const int64_t E = ck.config.model.n_routed_experts;
  if (E > 0) {
    for (const std::string& name : moe_bias_names(ck.config.model)) {
      std::vector<float> b = st.get_f32(name, {E}, path);
      for (float x : b)
        if (!std::isfinite(x)) throw_error(path, ": buffer '", name, "' contains NaN or Inf");
      ck.buffers.insert(ck.buffers.end(), b.begin(), b.end());
    }
  }
  return ck;
}

void load_params_into(const LoadedCheckpoint& ck, Transformer<float>& model) {
  if (model_config_to_json(model.config()) != model_config_to_json(ck.config.model))
    throw_error(ck.path, ": checkpoint model config ", model_config_to_json(ck.config.model).dump(),
                " does not match the model being loaded ", model_config_to_json(model.config()).dump());
  std::copy(ck.params.begin(), ck.params.end(), model.params());
  if (ck.buffers.size() != model.moe_bias_size())
    throw_error(ck.path, ": has ", ck.buffers.size(), " router-bias values, the model needs ", model.moe_bias_size());
  std::copy(ck.buffers.begin(), ck.buffers.end(), model.moe_bias());
}

}  // namespace tinyds
