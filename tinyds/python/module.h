// tinyds/python/module.h — the parts of the `tinyds` Python module, one per concept, each adding its names to the
// module object (module.cpp calls them in order).
#pragma once
#include <pybind11/pybind11.h>

namespace tinyds::python {

void bind_config(pybind11::module_& m);   // module.cpp: Config, ModelConfig, TrainConfig, DataConfig, presets
void bind_data(pybind11::module_& m);     // module.cpp: Tokenizer, generated problems, batches, rewards
void bind_memory(pybind11::module_& m);   // memory.cpp: the ledger and `tinyds memory`'s measurement as data
void bind_model(pybind11::module_& m);    // model.cpp: Model (float), Model64 (double), Decoder, generation
void bind_losses(pybind11::module_& m);   // losses.cpp: the post-training losses on arrays, value and gradient

}  // namespace tinyds::python
