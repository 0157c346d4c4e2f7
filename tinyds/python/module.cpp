// tinyds/python/module.cpp — `import tinyds`: the Python module's entry point, configuration and data.
//
// The module exposes what the notebooks (notebooks/) drive and no more: presets and config, models (model.cpp),
// the post-training losses (losses.cpp), the memory ledger (memory.cpp), the reward model (reward_model.cpp), the
// CUDA kernels under the emulation (kernels.cpp), problems, batches and rewards (here).
// Every tinyds::Error raises tinyds.Error (a RuntimeError) carrying tinyds's message.
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

#include "tinyds/data/batch.h"
#include "tinyds/data/generator.h"
#include "tinyds/data/problem.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/model/config.h"
#include "tinyds/posttrain/reward.h"
#include "tinyds/python/arrays.h"
#include "tinyds/python/module.h"

namespace tinyds::python {

void bind_config(py::module_& m) {
  py::class_<ModelConfig>(m, "ModelConfig", "The model's shape and architecture (tinyds/model/config.h).")
      .def_readwrite("vocab_size", &ModelConfig::vocab_size)
      .def_readwrite("max_seq_len", &ModelConfig::max_seq_len)
      .def_readwrite("n_layer", &ModelConfig::n_layer)
      .def_readwrite("d_model", &ModelConfig::d_model)
      .def_property(
          "attention", [](const ModelConfig& c) { return std::string(attention_kind_name(c.attention)); },
          [](ModelConfig& c, const std::string& s) { c.attention = parse_attention_kind(s); },
          "mha | gqa | mqa | mla")
      .def_readwrite("n_head", &ModelConfig::n_head)
      .def_readwrite("n_kv_head", &ModelConfig::n_kv_head)
      .def_readwrite("head_dim", &ModelConfig::head_dim)
      .def_readwrite("q_lora_rank", &ModelConfig::q_lora_rank)
      .def_readwrite("kv_lora_rank", &ModelConfig::kv_lora_rank)
      .def_readwrite("rope_dim", &ModelConfig::rope_dim)
      .def_readwrite("ffn_hidden", &ModelConfig::ffn_hidden)
      .def_readwrite("n_routed_experts", &ModelConfig::n_routed_experts)
      .def_readwrite("n_activated_experts", &ModelConfig::n_activated_experts)
      .def_readwrite("n_shared_experts", &ModelConfig::n_shared_experts)
      .def_readwrite("moe_inter_dim", &ModelConfig::moe_inter_dim)
      .def_readwrite("n_dense_layers", &ModelConfig::n_dense_layers)
      .def_readwrite("score_func", &ModelConfig::score_func)
      .def_readwrite("route_scale", &ModelConfig::route_scale)
      .def_readwrite("balance", &ModelConfig::balance)
      .def_readwrite("bias_update_speed", &ModelConfig::bias_update_speed)
      .def_readwrite("seq_aux_alpha", &ModelConfig::seq_aux_alpha)
      .def_readwrite("aux_alpha", &ModelConfig::aux_alpha)
      .def_readwrite("mtp_depth", &ModelConfig::mtp_depth)
      .def_readwrite("mtp_lambda", &ModelConfig::mtp_lambda)
      .def_readwrite("rope_theta", &ModelConfig::rope_theta)
      .def_readwrite("norm_eps", &ModelConfig::norm_eps)
      .def_readwrite("init_std", &ModelConfig::init_std)
      .def("__repr__", [](const ModelConfig& c) { return model_config_to_json(c).dump(); });

  py::class_<TrainConfig>(m, "TrainConfig", "Optimizer and schedule settings (tinyds/model/config.h).")
      .def_readwrite("batch_size", &TrainConfig::batch_size)
      .def_readwrite("seq_len", &TrainConfig::seq_len)
      .def_readwrite("steps", &TrainConfig::steps)
      .def_readwrite("lr", &TrainConfig::lr)
      .def_readwrite("min_lr", &TrainConfig::min_lr)
      .def_readwrite("warmup_steps", &TrainConfig::warmup_steps)
      .def_readwrite("weight_decay", &TrainConfig::weight_decay)
      .def_readwrite("grad_clip", &TrainConfig::grad_clip)
      .def_readwrite("seed", &TrainConfig::seed);

  py::class_<DataConfig>(m, "DataConfig", "Which generated problems a run trains on (tinyds/model/config.h).")
      .def_readwrite("levels", &DataConfig::levels)
      .def_readwrite("n_train", &DataConfig::n_train)
      .def_readwrite("distractors", &DataConfig::distractors);

  py::class_<Config>(m, "Config", "Model, training and data configuration; Config.preset('nano') etc.")
      .def(py::init<>())
      .def_static("preset", &Config::preset, py::arg("name"), "a named preset (tinyds.preset_names())")
      .def_readwrite("name", &Config::name)
      .def_readwrite("model", &Config::model)
      .def_readwrite("train", &Config::train)
      .def_readwrite("data", &Config::data)
      .def("validate", &Config::validate, "raises tinyds.Error naming the inconsistent field")
      .def("num_params", &Config::num_params)
      .def("to_json", [](const Config& c) { return config_to_json(c).dump(2); })
      .def("__repr__", [](const Config& c) { return "tinyds.Config(" + config_to_json(c).dump() + ")"; });

  m.def("preset_names", &Config::preset_names, "the names Config.preset accepts");
}

py::dict problem_dict(const Problem& p) {
  py::dict d;
  d["question"] = p.question;
  d["answer"] = p.answer;
  d["final_answer"] = p.final_answer;
  d["level"] = p.level;
  return d;
}

namespace {

Problem problem_from(const py::dict& d) {
  Problem p;
  p.question = d["question"].cast<std::string>();
  p.answer = d["answer"].cast<std::string>();
  p.final_answer = d["final_answer"].cast<int64_t>();
  if (d.contains("level")) p.level = d["level"].cast<int>();
  return p;
}

}  // namespace

std::vector<Problem> problems_from(const py::list& l) {
  std::vector<Problem> out;
  for (py::handle h : l) out.push_back(problem_from(h.cast<py::dict>()));
  return out;
}

void bind_data(py::module_& m) {
  py::class_<Tokenizer>(m, "Tokenizer", "The character-level tokenizer (tinyds/data/tokenizer.h).")
      .def(py::init<>())
      .def("encode", &Tokenizer::encode, py::arg("text"))
      .def("decode", &Tokenizer::decode, py::arg("ids"))
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def_readonly_static("PAD", &Tokenizer::PAD)
      .def_readonly_static("BOS", &Tokenizer::BOS)
      .def_readonly_static("EOS", &Tokenizer::EOS);

  m.def(
      "generate_problems",
      [](int level, int n, uint64_t seed, const std::string& split) {
        py::list out;
        for (const Problem& p : generate_problems(level, n, seed, parse_split(split))) out.append(problem_dict(p));
        return out;
      },
      py::arg("level"), py::arg("n"), py::arg("seed") = 1, py::arg("split") = "train",
      "GSM8K-style problems (dicts: question, answer, final_answer, level); tinyds/data/generator.h");
  m.def(
      "make_batch",
      [](const py::list& problems, int max_T, bool mask_prompt) {
        const std::vector<Problem> ps = problems_from(problems);
        std::vector<int> idx(ps.size());
        for (std::size_t i = 0; i < idx.size(); i++) idx[i] = static_cast<int>(i);
        const int T = batch_columns(ps, idx, max_T);
        const Batch b = make_batch(ps, idx, Tokenizer(), T, mask_prompt);
        return py::make_tuple(copy(b.inputs.data(), {b.B, b.T}), copy(b.targets.data(), {b.B, b.T}));
      },
      py::arg("problems"), py::arg("max_T"), py::arg("mask_prompt") = true,
      "(inputs (B, T), targets (B, T)) int32, targets -1 where masked; T = the longest row, at most max_T");
  m.def(
      "prompt_tokens",
      [](const py::dict& problem) { return encode_prompt(problem_from(problem), Tokenizer()); },
      py::arg("problem"), "<bos> question '\\n' as token ids");
  m.def(
      "score_completion",
      [](const std::vector<int>& ids, int64_t answer, bool check_steps) {
        RewardRules rules;
        rules.check_steps = check_steps;
        const RewardBreakdown r =
            score_completion_tokens(ids.data(), static_cast<int>(ids.size()), Tokenizer(), answer, rules);
        py::dict d;
        d["accuracy"] = r.accuracy;
        d["format"] = r.format;
        d["steps"] = r.steps;
        d["total"] = r.total;
        return d;
      },
      py::arg("completion_ids"), py::arg("answer"), py::arg("check_steps") = true,
      "the rule-based reward of a completion (tinyds/posttrain/reward.h): accuracy, format, steps, total; "
      "with check_steps accuracy needs every calculator annotation to hold");
}

}  // namespace tinyds::python

PYBIND11_MODULE(tinyds, m) {
  namespace py = pybind11;
  m.doc() = "tinyds: a small DeepSeek-style model and its post-training, driven from Python (tinyds/python/).";
  // tinyds::Error carries the message that says what was wrong and where; Python sees the same text.
  py::register_exception<tinyds::Error>(m, "Error", PyExc_RuntimeError);
  m.attr("SOURCE_DIR") = TINYDS_SOURCE_DIR;  // the source tree it was built from (notebooks show its files)
  tinyds::python::bind_config(m);
  tinyds::python::bind_data(m);
  tinyds::python::bind_model(m);
  tinyds::python::bind_losses(m);
  tinyds::python::bind_memory(m);
  tinyds::python::bind_reward_model(m);
  tinyds::python::bind_kernels(m);
}
