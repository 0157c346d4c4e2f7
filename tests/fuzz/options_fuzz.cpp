// tests/fuzz/options_fuzz.cpp — libFuzzer target: the command-line parser with the training options
// (ConfigOptions: --preset and every model/training override) and the config validation, on any argument
// list (the input split at '\0' bytes, as a shell would pass them): a Config that validates, or a tinyds::Error.
#include <cstdint>
#include <string>
#include <vector>

#include "tinyds/cli/args.h"
#include "tinyds/cli/config_options.h"
#include "tinyds/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> words = {"sft"};
  std::string cur;
  for (size_t i = 0; i < size; i++) {
    if (data[i] == 0) { words.push_back(cur); cur.clear(); }
    else cur += static_cast<char>(data[i]);
  }
  words.push_back(cur);
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(&w[0]);
  const int argc = static_cast<int>(argv.size());
  try {
    tinyds::Config cfg = tinyds::Config::preset(tinyds::scan_preset(argc, argv.data(), "nano"));
    tinyds::Args a("tinyds sft", "fuzz");
    tinyds::ConfigOptions co;
    co.add_to(a, cfg);
    if (a.parse(argc, argv.data())) co.finish(cfg);
  } catch (const tinyds::Error&) {
  }
  return 0;
}
