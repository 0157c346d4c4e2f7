// tests/fuzz/tokenizer_fuzz.cpp — libFuzzer target: the tokenizer's encode (any bytes), decode (any ids) and
// from_json (any JSON text, as stored in a checkpoint) give a result or a tinyds::Error; encode then decode
// gives the text back.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/data/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tinyds::Tokenizer tok;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const std::vector<int> ids = tok.encode(text);
    if (tok.decode(ids) != text) std::abort();  // a character tokenizer round-trips exactly
  } catch (const tinyds::Error&) {
  }
  std::vector<int> ids(size / 4);
  if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
  try {
    tok.decode(ids);
  } catch (const tinyds::Error&) {
  }
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) {
    try {
      const tinyds::Tokenizer t = tinyds::Tokenizer::from_json(j, "fuzz");
      t.encode("1+1=2\n");
    } catch (const tinyds::Error&) {
    }
  }
  return 0;
}
