// tinyds/python/module.h — the parts of the `tinyds` Python module, one per concept, each adding its names to the
// module object (module.cpp calls them in order).
#pragma once
#include <pybind11/pybind11.h>

#include <vector>

#include "tinyds/data/problem.h"

namespace tinyds::python {

void bind_config(pybind11::module_& m);   // module.cpp: Config, ModelConfig, TrainConfig, DataConfig, presets
void bind_data(pybind11::module_& m);     // module.cpp: Tokenizer, generated problems, batches, rewards
void bind_memory(pybind11::module_& m);   // memory.cpp: the ledger and `tinyds memory`'s measurement as data
void bind_model(pybind11::module_& m);    // model.cpp: Model (float), Model64 (double), Decoder, generation
void bind_losses(pybind11::module_& m);   // losses.cpp: the post-training losses on arrays, value and gradient
void bind_reward_model(pybind11::module_& m);  // reward_model.cpp: RewardModel, a trunk and a scalar head
void bind_kernels(pybind11::module_& m);  // kernels.cpp: tinyds.kernels (CUDA kernels, emulated), tinyds.ops

// Problems as Python dicts (question, answer, final_answer, level), both ways (module.cpp).
pybind11::dict problem_dict(const Problem& p);
std::vector<Problem> problems_from(const pybind11::list& l);

}  // namespace tinyds::python
