// tests/util/io_util.h — helpers shared by the io/ tests: a scratch directory, raw file bytes, a hand-built
// safetensors file and an "expect a tinyds::Error naming the file and the problem" check.
//
// The helpers decode and encode the safetensors byte layout themselves (8-byte little-endian length, JSON header
// parsed with nlohmann, data section) so that the tests check our reader and writer against an independent
// implementation of the format rather than against themselves.
#pragma once
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/train/safetensors.h"

namespace io_test {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Bytes = std::vector<uint8_t>;

// A fresh directory under the system temp dir, removed (with its contents) when the test ends.
struct TempDir {
  fs::path dir;
  explicit TempDir(const std::string& tag) {
    dir = fs::temp_directory_path() / ("tinyds_io_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

inline Bytes slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot open ", path);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline void spit(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  REQUIRE_MESSAGE(f.good(), "cannot write ", path);
}

// Little-endian u64, decoded byte by byte (independent of the host's byte order).
inline uint64_t le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

inline void put_le64(Bytes& out, uint64_t v) {
  for (int i = 0; i < 8; i++) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// A safetensors file assembled by hand: length prefix (of `header` exactly, no padding), header, data.
inline Bytes raw_file(const std::string& header, const Bytes& data) {
  Bytes out;
  put_le64(out, header.size());
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// The parts of a file on disk, decoded independently of tinyds.
struct RawParts {
  uint64_t header_len = 0;
  std::string header_text;
  json header;
  Bytes data;
};

inline RawParts split_file(const std::string& path) {
  Bytes f = slurp(path);
  REQUIRE(f.size() >= 8);
  RawParts p;
  p.header_len = le64(f.data());
  REQUIRE(8 + p.header_len <= f.size());
  p.header_text.assign(f.begin() + 8, f.begin() + 8 + static_cast<std::ptrdiff_t>(p.header_len));
  p.header = json::parse(p.header_text);
  p.data.assign(f.begin() + 8 + static_cast<std::ptrdiff_t>(p.header_len), f.end());
  return p;
}

// Re-writes the file at `path` with its header edited by `edit` (the data section is kept as is).
template <typename Edit>
void edit_header(const std::string& path, Edit edit) {
  RawParts p = split_file(path);
  edit(p.header);
  spit(path, raw_file(p.header.dump(), p.data));
}

// Reading `path` must throw tinyds::Error (not another exception, not success) whose message starts with the
// path and contains every one of `needles`.
inline void expect_read_error(const std::string& path, std::initializer_list<std::string> needles) {
  std::string msg;
  try {
    tinyds::read_safetensors(path);
  } catch (const tinyds::Error& e) {
    msg = e.what();
  }
  REQUIRE_MESSAGE(!msg.empty(), "reading ", path, " succeeded but should have failed");
  CHECK_MESSAGE(msg.rfind(path, 0) == 0, "message does not start with the path: ", msg);
  for (const std::string& n : needles) CHECK_MESSAGE(msg.find(n) != std::string::npos, "'", n, "' not in: ", msg);
}

}  // namespace io_test
