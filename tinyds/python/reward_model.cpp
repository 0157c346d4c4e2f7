// tinyds/python/reward_model.cpp — tinyds.RewardModel: the reward model of `tinyds rm`
// (posttrain/reward_model_trainer.h), a transformer trunk and a scalar head read at each row's last completion
// token, and tinyds.preference_rows, the chosen / rejected pairs it trains on (posttrain/preference.h).
//
// Shapes: B rows, T positions, C d_model, P pairs; pair rows are [chosen 0..P), rejected P..2P)].
// The head (C + 1: w, then b) is returned as a zero-copy view; values and rewards as copies.
#include <pybind11/stl.h>

#include <memory>

#include "tinyds/posttrain/critic.h"
#include "tinyds/posttrain/preference.h"
#include "tinyds/posttrain/reward_model_trainer.h"
#include "tinyds/python/arrays.h"
#include "tinyds/python/module.h"
#include "tinyds/train/checkpoint.h"

namespace tinyds::python {

namespace {

// A reward model, the configuration and tokenizer of its trunk, and (made by the first train_step) its optimizer.
struct RewardModelHandle {
  Config cfg;
  Tokenizer tok;
  std::unique_ptr<Critic<float>> rm;
  std::unique_ptr<CriticAdamW> adam;
  int steps = 0;  // optimizer steps taken by train_step
};

}  // namespace

void bind_reward_model(py::module_& m) {
  using H = RewardModelHandle;
  py::class_<H>(m, "RewardModel",
                "A transformer trunk and a scalar head r = x_L[last] . w + b (posttrain/critic.h under Role::reward), "
                "as `tinyds rm` trains it (posttrain/reward_model_trainer.h)")
      .def_static("from_checkpoint", [](const std::string& path) {
        // As `tinyds rm --init`: the trunk from a policy checkpoint, the head zero (every reward starts at 0).
        LoadedCheckpoint ck = load_checkpoint(path);
        H h{ck.config, ck.tokenizer, std::make_unique<Critic<float>>(ck.config.model, Role::reward), nullptr, 0};
        load_params_into(ck, h.rm->trunk());
        return h;
      }, py::arg("path"), "trunk weights from a Model checkpoint (Model.save, `tinyds sft`), head zero")
      .def_static("load", [](const std::string& stem) {
        LoadedRewardModel r = load_reward_model(stem);
        return H{r.config, r.tokenizer, std::move(r.model), nullptr, 0};
      }, py::arg("stem"), "a reward model `tinyds rm` saved: <stem>.safetensors and <stem>.reward_head.safetensors")
      .def_property_readonly("head", [](py::object self) {
        H& h = self.cast<H&>();
        return view(h.rm->head(), {static_cast<py::ssize_t>(h.rm->head_size())}, self);
      }, "(C + 1) the head, a view: w = head[:C], b = head[C]")
      .def("values", [](H& h, const In<int>& tokens) {
        if (tokens.ndim() != 2) throw_error("tokens: expected a 2-D (B, T) array, got ", tokens.ndim(), " dimensions");
        const int B = static_cast<int>(tokens.shape(0)), T = static_cast<int>(tokens.shape(1));
        return copy(h.rm->forward(tokens.data(), B, T), {B, T});
      }, py::arg("tokens"), "V (B, T) = x_L @ w + b at every position of tokens (B, T)")
      .def("score", [](H& h, const py::list& rows) {
        const std::vector<double> r = score_pairs(*h.rm, problems_from(rows), h.tok);
        return copy(r.data(), {static_cast<py::ssize_t>(r.size())});
      }, py::arg("rows"),
      "rewards (2P) of pair rows (problem dicts, chosen then rejected): V at each row's last completion position")
      .def("train_step", [](H& h, const py::list& rows, float lr, float max_grad_norm) {
        if (!h.adam) h.adam = std::make_unique<CriticAdamW>(*h.rm, Role::reward);
        RMTrainOptions o;
        o.lr = lr;
        o.max_grad_norm = max_grad_norm;
        const RMStepStats s = reward_model_update(*h.rm, *h.adam, problems_from(rows), h.tok, o, h.steps++);
        py::dict d;
        d["loss"] = s.rm.loss; d["accuracy"] = s.rm.accuracy; d["margin"] = s.rm.mean_margin;
        d["reward_chosen"] = s.reward_chosen; d["reward_rejected"] = s.reward_rejected; d["grad_norm"] = s.grad_norm;
        return d;
      }, py::arg("rows"), py::arg("lr") = 1e-4f, py::arg("max_grad_norm") = 1.0f,
      "one Bradley-Terry step of `tinyds rm` on pair rows: loss, accuracy, margin, reward_chosen, reward_rejected "
      "(before the update), grad_norm (trunk + head, before clipping)")
      .def_property_readonly("steps", [](const H& h) { return h.steps; });

  m.def(
      "preference_rows",
      [](const py::list& chosen, const std::string& corruption, uint64_t seed) {
        py::list out;
        for (const Problem& p : preference_rows(problems_from(chosen), parse_pair_corruption(corruption), seed))
          out.append(problem_dict(p));
        return out;
      },
      py::arg("chosen"), py::arg("corruption") = "mixed", py::arg("seed") = 1,
      "2P problem dicts: the P chosen as given, then each with its solution made wrong (final | intermediate | "
      "mixed), as `tinyds rm` and `tinyds dpo` build pairs with --rejected corrupted (posttrain/preference.h)");
}

}  // namespace tinyds::python
