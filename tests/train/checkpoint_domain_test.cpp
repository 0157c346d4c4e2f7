// tests/train/checkpoint_domain_test.cpp — a checkpoint is refused on load when a value is outside its domain
// (NaN/Inf parameters or moments, negative second moments, a step that is negative, too large for an int or
// beyond the schedule), when its config implies tensors the file does not hold (checked before allocating),
// and a model or optimizer state holding NaN is never written.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/util/error_util.h"
#include "tests/util/fs_util.h"
#include "tinyds/ops/adamw.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/safetensors.h"

using namespace tinyds;
using tinyds::test::temp_dir;
using tinyds_test::error_of;
using tinyds_test::has;

namespace {

// A nano checkpoint with AdamW state: parameters initialised, m = 0.01, v = 0.0001 everywhere.
std::string write_nano(const std::string& dir, const Config& c) {
  Transformer<float> m(c.model, Role::policy);
  m.init_weights(3);
  AdamW adam(m.layout(), Role::policy);
  std::fill(adam.m(), adam.m() + m.num_params(), 0.01f);
  std::fill(adam.v(), adam.v() + m.num_params(), 1e-4f);
  const std::string path = dir + "/ok.safetensors";
  save_checkpoint(path, c, Tokenizer(), m, &adam, TrainState{5, 5});
  return path;
}

Config nano() {
  Config c = Config::preset("nano");
  c.train.steps = 20;
  return c;
}

// Rewrites one F32 tensor's element 0, or a metadata entry, of the file at `path` into `out`.
std::string with_value(const std::string& path, const std::string& out, const std::string& tensor, float value) {
  SafeTensors st = read_safetensors(path);
  REQUIRE(st.has(tensor));
  std::memcpy(st.tensors[tensor].bytes.data(), &value, 4);
  write_safetensors(out, st);
  return out;
}
std::string with_meta(const std::string& path, const std::string& out, const std::string& key, const std::string& v) {
  SafeTensors st = read_safetensors(path);
  st.metadata[key] = v;
  write_safetensors(out, st);
  return out;
}

}  // namespace

TEST_CASE("train/checkpoint: out-of-domain optimizer and parameter values are refused, naming file and tensor") {
  const std::string dir = temp_dir("ckpt_domain");
  const std::string ok = write_nano(dir, nano());
  CHECK(load_checkpoint(ok).has_optimizer);  // the unmodified file loads
  const std::string bad = dir + "/bad.safetensors";
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();

  std::string msg = error_of([&] { load_checkpoint(with_value(ok, bad, "adam_v.embed", -1.0f)); });
  CHECK_MESSAGE(has(msg, bad), msg);
  CHECK_MESSAGE(has(msg, "'adam_v.embed'"), msg);
  CHECK_MESSAGE(has(msg, "negative"), msg);

  msg = error_of([&] { load_checkpoint(with_value(ok, bad, "adam_v.head", inf)); });
  CHECK_MESSAGE(has(msg, "'adam_v.head'"), msg);

  msg = error_of([&] { load_checkpoint(with_value(ok, bad, "adam_m.norm", nan)); });
  CHECK_MESSAGE(has(msg, "'adam_m.norm'"), msg);

  msg = error_of([&] { load_checkpoint(with_value(ok, bad, "layers.1.attn_norm", inf)); });
  CHECK_MESSAGE(has(msg, "'layers.1.attn_norm'"), msg);
  CHECK_MESSAGE(has(msg, bad), msg);
}

TEST_CASE("train/checkpoint: train_state out of range is refused (negative, beyond int, beyond the schedule)") {
  const std::string dir = temp_dir("ckpt_state");
  const std::string ok = write_nano(dir, nano());
  const std::string bad = dir + "/bad.safetensors";

  std::string msg = error_of([&] { load_checkpoint(with_meta(ok, bad, "train_state", R"({"step": -3, "adam_t": 5})")); });
  CHECK_MESSAGE(has(msg, "train_state.step = -3"), msg);
  CHECK_MESSAGE(has(msg, bad), msg);
  // 2^40 = 1099511627776: read through a 32-bit int it would become 0 and the run would restart silently.
  msg = error_of([&] { load_checkpoint(with_meta(ok, bad, "train_state", R"({"step": 1099511627776, "adam_t": 5})")); });
  CHECK_MESSAGE(has(msg, "train_state.step = 1099511627776"), msg);
  msg = error_of([&] { load_checkpoint(with_meta(ok, bad, "train_state", R"({"step": 5, "adam_t": -1})")); });
  CHECK_MESSAGE(has(msg, "train_state.adam_t = -1"), msg);

  // Step 21 of a 20-step schedule loads (it can be sampled from) but cannot be resumed.
  const LoadedCheckpoint ck = load_checkpoint(with_meta(ok, bad, "train_state", R"({"step": 21, "adam_t": 21})"));
  msg = error_of([&] { check_resumable(ck); });
  CHECK_MESSAGE(has(msg, "train_state.step = 21 is beyond its schedule of train.steps = 20"), msg);
  check_resumable(load_checkpoint(ok));  // step 5 of 20: fine
}

TEST_CASE("train/checkpoint: a config asking for huge tensors fails on the shapes before allocating") {
  const std::string dir = temp_dir("ckpt_huge");
  const std::string ok = write_nano(dir, nano());
  const std::string bad = dir + "/bad.safetensors";
  const nlohmann::json cfg = nlohmann::json::parse(read_safetensors(ok).metadata.at("config"));

  // d_model 1e9 (head counts unchanged, so the config itself validates): 'embed' would be 128 x 1e9 floats (512 GB).
  nlohmann::json big = cfg;
  big["model"]["d_model"] = 1000000000;
  std::string msg = error_of([&] { load_checkpoint(with_meta(ok, bad, "config", big.dump())); });
  CHECK_MESSAGE(has(msg, bad), msg);
  CHECK_MESSAGE(has(msg, "has shape"), msg);  // a shape mismatch, not std::bad_alloc (which error_of would not catch)

  // n_layer 1e6: millions of tensor names; refused from the file's tensor count.
  nlohmann::json deep = cfg;
  deep["model"]["n_layer"] = 1000000;
  msg = error_of([&] { load_checkpoint(with_meta(ok, bad, "config", deep.dump())); });
  CHECK_MESSAGE(has(msg, "1000000 layers"), msg);
  CHECK_MESSAGE(has(msg, bad), msg);
}

TEST_CASE("train/checkpoint: a model or optimizer state with NaN is not written and the old file stays") {
  const std::string dir = temp_dir("ckpt_refuse");
  const Config c = nano();
  const std::string path = write_nano(dir, c);
  std::ifstream before_f(path, std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(before_f)), std::istreambuf_iterator<char>());

  Transformer<float> m(c.model, Role::policy);
  m.init_weights(4);
  AdamW adam(m.layout(), Role::policy);
  const TensorSpec& head = m.layout().find("head");
  SUBCASE("parameter") {
    m.params()[head.offset + 3] = std::numeric_limits<float>::quiet_NaN();
    const std::string msg = error_of([&] { save_checkpoint(path, c, Tokenizer(), m, &adam, TrainState{6, 6}); });
    CHECK_MESSAGE(has(msg, "'head'"), msg);
    CHECK_MESSAGE(has(msg, path), msg);
  }
  SUBCASE("second moment") {
    adam.v()[head.offset] = std::numeric_limits<float>::infinity();
    const std::string msg = error_of([&] { save_checkpoint(path, c, Tokenizer(), m, &adam, TrainState{6, 6}); });
    CHECK_MESSAGE(has(msg, "'adam_v.head'"), msg);
  }
  std::ifstream after_f(path, std::ios::binary);
  const std::string after((std::istreambuf_iterator<char>(after_f)), std::istreambuf_iterator<char>());
  CHECK(after == before);  // the last good checkpoint is untouched
  CHECK(!std::filesystem::exists(path + ".tmp"));
}
