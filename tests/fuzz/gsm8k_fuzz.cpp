// tests/fuzz/gsm8k_fuzz.cpp — libFuzzer target: any text given to the GSM8K JSONL reader (with and without
// --ascii-fold) gives problems whose every character the tokenizer encodes, or a tinyds::Error.
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "tinyds/core/error.h"
#include "tinyds/data/gsm8k.h"
#include "tinyds/data/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tinyds::Tokenizer tok;
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (bool fold : {false, true}) {
    std::istringstream in(text);
    try {
      for (const tinyds::Problem& p : tinyds::read_gsm8k_jsonl(in, "fuzz.jsonl", fold)) {
        // The reader promises what it returns tokenizes: an Error here is a bug, so it aborts.
        try {
          tok.encode(p.question);
          tok.encode(p.answer);
        } catch (const tinyds::Error&) {
          std::abort();
        }
      }
    } catch (const tinyds::Error&) {
    }
  }
  return 0;
}
