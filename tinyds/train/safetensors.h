// tinyds/train/safetensors.h — reading and writing the safetensors format.
//
// Layout: 8-byte little-endian u64 N, then N bytes of JSON header
//   {"__metadata__": {"k": "v", ...}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
// then the raw little-endian tensor bytes; offsets are relative to the end of the header.
// Writes go to "<path>.tmp" and are renamed over <path> (never a half-written file).
// Reading validates everything and throws tinyds::Error naming the file and what is wrong: too short,
// header length past the end, bad JSON, unknown dtype, offsets out of range / overlapping / not matching shape,
// trailing bytes. Supported dtypes: F32, F64, I32, I64.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tinyds {

enum class DType { F32, F64, I32, I64 };

struct TensorData {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // raw little-endian data
  int64_t numel() const;
};

struct SafeTensors {
  std::map<std::string, std::string> metadata;  // the __metadata__ object (string values)
  std::map<std::string, TensorData> tensors;

  // Adds a tensor (copies the data).
  void put_f32(const std::string& name, const std::vector<int64_t>& shape, const float* data);
  void put_f64(const std::string& name, const std::vector<int64_t>& shape, const double* data);
  void put_i32(const std::string& name, const std::vector<int64_t>& shape, const int32_t* data);
  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  // Copies a tensor out as float (F32, or F64 converted), checking its shape; errors name `where` and the tensor.
  std::vector<float> get_f32(const std::string& name, const std::vector<int64_t>& shape,
                             const std::string& where) const;
  std::vector<int32_t> get_i32(const std::string& name, const std::vector<int64_t>& shape,
                               const std::string& where) const;
  // Shape of a tensor; error if absent.
  const std::vector<int64_t>& shape_of(const std::string& name, const std::string& where) const;
};

void write_safetensors(const std::string& path, const SafeTensors& st);
SafeTensors read_safetensors(const std::string& path);
// The same checks on a file's bytes already in memory; errors name `path` (the fuzz target's entry point).
SafeTensors parse_safetensors(const std::vector<uint8_t>& file, const std::string& path);

}  // namespace tinyds
