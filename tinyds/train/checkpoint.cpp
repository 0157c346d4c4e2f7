// tinyds/train/checkpoint.cpp — see checkpoint.h.
#include "tinyds/train/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/device/device.h"
#include "tinyds/train/finite_check.h"
#include "tinyds/train/safetensors.h"

namespace tinyds {

using json = nlohmann::json;

namespace {

// The tensors a checkpoint holds, copied to the host: the model's parameters and router biases, AdamW's moments.
// On a cuda model these live in device memory, which only the dev:: copies read; on the CPU they are plain copies.
// Either way the file written from them is the same.
struct HostState {
  std::vector<float> params, moe_bias, adam_m, adam_v;  // (layout.total()), (moe_bias_size), (layout.total()) x 2
};

HostState host_state(const Transformer<float>& model, const AdamW* opt) {
  HostState h;
  h.params.resize(model.num_params());
  model.params_to_host(h.params.data());
  h.moe_bias.resize(model.moe_bias_size());
  model.moe_bias_to_host(h.moe_bias.data());
  if (opt) {
    h.adam_m.resize(model.num_params());
    h.adam_v.resize(model.num_params());
    opt->moments_to_host(h.adam_m.data(), h.adam_v.data());
  }
  return h;
}

// A checkpoint holding NaN or Inf cannot be resumed or sampled from: refuse to write it (it would replace the
// last good one), naming the first such tensor.
void refuse_nonfinite(const std::string& path, const ParamLayout& layout, const HostState& h) {
  // The host copies are read here whatever device the caller's ops run on (the finite checks read through the
  // current device).
  OnDevice host(Device::cpu);
  std::string bad = first_nonfinite_tensor(layout, h.params.data());
  if (bad.empty() && !h.adam_m.empty()) {
    bad = first_nonfinite_tensor(layout, h.adam_m.data());
    if (!bad.empty()) bad = "adam_m." + bad;
  }
  if (bad.empty() && !h.adam_v.empty()) {
    bad = first_nonfinite_tensor(layout, h.adam_v.data());
    if (!bad.empty()) bad = "adam_v." + bad;
  }
  for (std::size_t i = 0; bad.empty() && i < h.moe_bias.size(); i++)
    if (!std::isfinite(h.moe_bias[i])) bad = "router bias " + std::to_string(i);
  if (!bad.empty())
    throw_error(path, ": not written: tensor '", bad, "' holds NaN or Inf (the run diverged; the file on disk, if "
                "any, is the last good checkpoint)");
}

}  // namespace

void save_checkpoint(const std::string& path, const Config& config, const Tokenizer& tok,
                     const Transformer<float>& model, const AdamW* opt, const TrainState& state) {
  const HostState h = host_state(model, opt);
  refuse_nonfinite(path, model.layout(), h);
  SafeTensors st;
  st.metadata["format"] = "tinyds";
  st.metadata["format_version"] = "1";
  st.metadata["config"] = config_to_json(config).dump();
  st.metadata["tokenizer"] = tok.to_json().dump();
  st.metadata["train_state"] = json{{"step", state.step}, {"adam_t", state.adam_t}}.dump();
  for (const TensorSpec& t : model.layout().tensors()) {
    st.put_f32(t.name, t.shape, h.params.data() + t.offset);
    if (opt) {
      st.put_f32("adam_m." + t.name, t.shape, h.adam_m.data() + t.offset);
      st.put_f32("adam_v." + t.name, t.shape, h.adam_v.data() + t.offset);
    }
  }
  // Buffers: each MoE layer's router bias (E), not a parameter (no Adam moments).
  const std::vector<std::string> names = model.moe_bias_names();
  const int64_t E = model.config().n_routed_experts;
  for (std::size_t i = 0; i < names.size(); i++) st.put_f32(names[i], {E}, h.moe_bias.data() + i * E);
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

// A train_state field: an integer in [0, INT_MAX]. Read as a 64-bit integer first, so 2^40 is an error, not 0.
int train_state_field(const json& ts, const char* field, const std::string& path) {
  if (!ts.is_object() || !ts.contains(field) || !ts[field].is_number_integer())
    throw_error(path, ": __metadata__ 'train_state' needs integer fields 'step' and 'adam_t'");
  const json& v = ts[field];
  if (v.is_number_unsigned() ? v.get<uint64_t>() > INT32_MAX : (v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX))
    throw_error(path, ": train_state.", field, " = ", v.dump(), " is outside [0, ", INT32_MAX, "]");
  return v.get<int>();
}

void check_shape(const SafeTensors& st, const std::string& name, const std::vector<int64_t>& shape,
                 const std::string& path) {
  if (st.shape_of(name, path) != shape) st.get_f32(name, shape, path);  // throws its "has shape .., expected .."
}

// Parameters and AdamW's m are finite; AdamW's v (a running mean of squared gradients) is finite and >= 0.
void check_domain(const std::vector<float>& x, const std::string& name, const std::string& path, bool nonneg) {
  for (std::size_t i = 0; i < x.size(); i++) {
    if (!std::isfinite(x[i]))
      throw_error(path, ": tensor '", name, "' element ", i, " is ", x[i], " (corrupted or diverged checkpoint)");
    if (nonneg && x[i] < 0)
      throw_error(path, ": tensor '", name, "' element ", i, " is ", x[i],
                  " but a second moment cannot be negative (corrupted checkpoint)");
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
  ck.state.step = train_state_field(ts, "step", path);
  ck.state.adam_t = train_state_field(ts, "adam_t", path);

  // Every tensor the config implies must be in the file with its shape BEFORE anything is allocated: a config
  // edited to ask for d_model 1e9 is then "tensor 'embed' has shape [..], expected [..]", not std::bad_alloc.
  // Every block has several tensors, so a file of N tensors holds at most N blocks: this bounds the layout
  // built below (a config asking for n_layer 1e6 would otherwise build millions of tensor names first).
  const long blocks = static_cast<long>(ck.config.model.n_layer) + ck.config.model.mtp_depth;
  if (blocks > static_cast<long>(st.tensors.size()))
    throw_error(path, ": config asks for ", ck.config.model.n_layer, " layers and ", ck.config.model.mtp_depth,
                " MTP modules but the file holds only ", st.tensors.size(), " tensors (config and tensors disagree)");
  ParamLayout layout(ck.config.model);
  ck.has_optimizer = st.has("adam_m." + layout.tensors()[0].name);
  for (const TensorSpec& t : layout.tensors()) {
    check_shape(st, t.name, t.shape, path);
    if (ck.has_optimizer) {
      check_shape(st, "adam_m." + t.name, t.shape, path);
      check_shape(st, "adam_v." + t.name, t.shape, path);
    }
  }

  ck.params.assign(layout.total(), 0.0f);
  if (ck.has_optimizer) { ck.adam_m.assign(layout.total(), 0.0f); ck.adam_v.assign(layout.total(), 0.0f); }
  for (const TensorSpec& t : layout.tensors()) {
    std::vector<float> w = st.get_f32(t.name, t.shape, path);  // errors name a mis-typed tensor
    check_domain(w, t.name, path, false);
    std::copy(w.begin(), w.end(), ck.params.begin() + t.offset);
    if (ck.has_optimizer) {
      std::vector<float> m = st.get_f32("adam_m." + t.name, t.shape, path);
      std::vector<float> v = st.get_f32("adam_v." + t.name, t.shape, path);
      check_domain(m, "adam_m." + t.name, path, false);
      check_domain(v, "adam_v." + t.name, path, true);  // a second moment: a mean of squares
      std::copy(m.begin(), m.end(), ck.adam_m.begin() + t.offset);
      std::copy(v.begin(), v.end(), ck.adam_v.begin() + t.offset);
    }
  }
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

void check_resumable(const LoadedCheckpoint& ck) {
  if (!ck.has_optimizer)
    throw_error(ck.path, ": has no optimizer state, so it cannot be resumed (use --init to start from its weights)");
  if (ck.state.step > ck.config.train.steps)
    throw_error(ck.path, ": train_state.step = ", ck.state.step, " is beyond its schedule of train.steps = ",
                ck.config.train.steps, " (corrupted checkpoint)");
}

void load_params_into(const LoadedCheckpoint& ck, Transformer<float>& model) {
  if (model_config_to_json(model.config()) != model_config_to_json(ck.config.model))
    throw_error(ck.path, ": checkpoint model config ", model_config_to_json(ck.config.model).dump(),
                " does not match the model being loaded ", model_config_to_json(model.config()).dump());
  if (ck.params.size() != model.num_params())
    throw_error(ck.path, ": has ", ck.params.size(), " parameters, the model needs ", model.num_params());
  if (ck.buffers.size() != model.moe_bias_size())
    throw_error(ck.path, ": has ", ck.buffers.size(), " router-bias values, the model needs ", model.moe_bias_size());
  // Into the model's place (device memory on cuda).
  model.params_from_host(ck.params.data());
  model.moe_bias_from_host(ck.buffers.data());
}

void load_optimizer_into(const LoadedCheckpoint& ck, AdamW& opt) {
  if (!ck.has_optimizer) throw_error(ck.path, ": has no optimizer state");
  if (ck.adam_m.size() != opt.size() || ck.adam_v.size() != opt.size())
    throw_error(ck.path, ": has AdamW moments of ", ck.adam_m.size(), " values, the optimizer needs ", opt.size());
  opt.moments_from_host(ck.adam_m.data(), ck.adam_v.data());
  opt.set_t(ck.state.adam_t);
}

}  // namespace tinyds
