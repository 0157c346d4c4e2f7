// tinyds/cli/config_options.h — the command-line options that build a Config: --preset NAME, then overrides
// of individual fields (--steps, --lr, --d-model, ...). --help shows the chosen preset's values as defaults.
#pragma once
#include <string>
#include <vector>

#include "tinyds/cli/args.h"
#include "tinyds/model/config.h"

namespace tinyds {

// Finds "--preset X" / "--preset=X" in argv (default `fallback`), so the other options can show its values.
std::string scan_preset(int argc, char** argv, const std::string& fallback);

// Registers `--device cpu|cuda` on `a`, bound to `device` (parse it with parse_device(device, "--device")).
void add_device_option(Args& a, std::string& device);

// Registers --preset and the override options on `a`, bound to fields of `cfg` (which must outlive parsing).
struct ConfigOptions {
  std::string preset;
  std::string attention;
  bool no_pad_drills = false;  // --no-pad-drills (the small preset turns padding drills on)
  void add_to(Args& a, Config& cfg);
  // Only --preset and the model options (architecture and max_seq_len), for commands with their own training
  // options (`tinyds distill`'s student). Their names are kept in model_option_names.
  void add_model_to(Args& a, Config& cfg);
  std::vector<std::string> model_option_names;
  // After parsing: applies the string-valued options and validates.
  void finish(Config& cfg);
};

}  // namespace tinyds
