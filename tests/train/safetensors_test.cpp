// tests/train/safetensors_test.cpp — safetensors writing and reading of good files (corrupt files:
// tests/train/safetensors_corrupt_test.cpp).
//
// Shapes of the sample: "w" F32 (2, 3), "d" F64 (4), "idx" I32 (5), "s" F32 scalar (), "e" F32 (0, 3).
// Expected values are the source arrays themselves (copied bytes) or computed here with static_cast / memcpy.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>

#include "tests/util/io_util.h"
#include "tinyds/train/safetensors.h"

using namespace io_test;
using tinyds::DType;
using tinyds::SafeTensors;

namespace {

// Values chosen to catch lossy copies: -0.0, a denormal, a NaN with a payload, infinities, int extremes.
struct Sample {
  std::vector<float> w = {1.5f, -0.0f, std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::infinity(), -3.25e-7f, 0.0f};
  std::vector<double> d = {1.0 / 3.0, -2.5, 1e300, -1e-300};
  std::vector<int32_t> idx = {0, -1, 7, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
  float s = 3.25f;
  std::map<std::string, std::string> meta = {
      {"config", "{\"n_layer\": 2}"}, {"note", "h\xc3\xa9llo \"quoted\"\nnew line"}, {"step", "42"}};
  Sample() {
    uint32_t nan_bits = 0x7FC01234u;  // a quiet NaN with a payload: must survive bit for bit
    std::memcpy(&w[5], &nan_bits, 4);
  }
  SafeTensors build() const {
    SafeTensors st;
    st.metadata = meta;
    st.put_f32("w", {2, 3}, w.data());
    st.put_f64("d", {4}, d.data());
    st.put_i32("idx", {5}, idx.data());
    st.put_f32("s", {}, &s);
    st.put_f32("e", {0, 3}, nullptr);
    return st;
  }
};

template <typename T>
Bytes bytes_of(const std::vector<T>& v) {
  Bytes b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const tinyds::Error& e) {
    return e.what();
  }
  return "";
}

void check_contains(const std::string& msg, std::initializer_list<std::string> needles) {
  REQUIRE_MESSAGE(!msg.empty(), "expected a tinyds::Error");
  for (const std::string& n : needles) CHECK_MESSAGE(msg.find(n) != std::string::npos, "'", n, "' not in: ", msg);
}

}  // namespace

TEST_CASE("train/safetensors: round trip keeps dtypes, shapes, bytes and metadata") {
  TempDir tmp("roundtrip");
  Sample s;
  std::string path = tmp.file("model.safetensors");
  tinyds::write_safetensors(path, s.build());
  SafeTensors r = tinyds::read_safetensors(path);

  CHECK(r.metadata == s.meta);
  REQUIRE(r.tensors.size() == 5);
  CHECK(r.tensors.at("w").dtype == DType::F32);
  CHECK(r.tensors.at("d").dtype == DType::F64);
  CHECK(r.tensors.at("idx").dtype == DType::I32);
  CHECK(r.tensors.at("w").shape == std::vector<int64_t>{2, 3});
  CHECK(r.tensors.at("s").shape.empty());
  CHECK(r.tensors.at("s").numel() == 1);  // a scalar has one element
  CHECK(r.tensors.at("e").numel() == 0);
  // Raw bytes: exact copies of the source arrays.
  CHECK(r.tensors.at("w").bytes == bytes_of(s.w));
  CHECK(r.tensors.at("d").bytes == bytes_of(s.d));
  CHECK(r.tensors.at("idx").bytes == bytes_of(s.idx));

  // Typed accessors: F32 bit for bit (memcmp, so NaN payload and -0.0 count), F64 -> float by static_cast.
  std::vector<float> w = r.get_f32("w", {2, 3}, "test");
  REQUIRE(w.size() == s.w.size());
  CHECK(std::memcmp(w.data(), s.w.data(), 4 * w.size()) == 0);
  std::vector<float> d = r.get_f32("d", {4}, "test");
  REQUIRE(d.size() == 4);
  for (int i = 0; i < 4; i++) {
    float want = static_cast<float>(s.d[i]);  // 1e300 -> inf, -1e-300 -> -0.0: compare bits
    CHECK(std::memcmp(&d[i], &want, 4) == 0);
  }
  CHECK(r.get_i32("idx", {5}, "test") == s.idx);
  CHECK(r.get_f32("s", {}, "test") == std::vector<float>{3.25f});
  CHECK(r.get_f32("e", {0, 3}, "test").empty());
  CHECK(r.has("w"));
  CHECK_FALSE(r.has("nope"));
  CHECK(r.shape_of("idx", "test") == std::vector<int64_t>{5});
}

TEST_CASE("train/safetensors: round trip of an empty container (no tensors, no metadata)") {
  TempDir tmp("empty");
  std::string path = tmp.file("empty.safetensors");
  tinyds::write_safetensors(path, SafeTensors{});
  SafeTensors r = tinyds::read_safetensors(path);
  CHECK(r.tensors.empty());
  CHECK(r.metadata.empty());
  RawParts p = split_file(path);
  CHECK(p.data.empty());
  CHECK(p.header.is_object());
  CHECK((8 + p.header_len) % 8 == 0);
}

TEST_CASE("train/safetensors: byte layout on disk matches the format (decoded independently)") {
  TempDir tmp("layout");
  Sample s;
  std::string path = tmp.file("model.safetensors");
  tinyds::write_safetensors(path, s.build());
  Bytes file = slurp(path);
  RawParts p = split_file(path);

  // 8-byte little-endian length, then a JSON object padded with spaces to a multiple of 8.
  CHECK(p.header_len == le64(file.data()));
  CHECK((8 + p.header_len) % 8 == 0);
  CHECK(p.header_text.front() == '{');
  std::size_t last = p.header_text.find_last_not_of(' ');
  CHECK(p.header_text[last] == '}');
  CHECK(p.header_text.size() - 1 - last < 8);  // padding is at most 7 bytes

  // Metadata is a string -> string object.
  REQUIRE(p.header.contains("__metadata__"));
  CHECK(p.header["__metadata__"].get<std::map<std::string, std::string>>() == s.meta);

  // Each tensor: dtype, shape, and data_offsets whose span equals numel * element size (computed here).
  struct Want { const char* dtype; std::vector<int64_t> shape; Bytes bytes; };
  std::map<std::string, Want> want = {
      {"w", {"F32", {2, 3}, bytes_of(s.w)}},
      {"d", {"F64", {4}, bytes_of(s.d)}},
      {"idx", {"I32", {5}, bytes_of(s.idx)}},
      {"s", {"F32", {}, bytes_of(std::vector<float>{s.s})}},
      {"e", {"F32", {0, 3}, {}}}};
  CHECK(p.header.size() == want.size() + 1);  // + __metadata__
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, w] : want) {
    CAPTURE(name);
    REQUIRE(p.header.contains(name));
    const json& e = p.header[name];
    CHECK(e["dtype"] == w.dtype);
    CHECK(e["shape"].get<std::vector<int64_t>>() == w.shape);
    uint64_t b = e["data_offsets"][0].get<uint64_t>(), end = e["data_offsets"][1].get<uint64_t>();
    REQUIRE(b <= end);
    REQUIRE(end <= p.data.size());
    CHECK(Bytes(p.data.begin() + b, p.data.begin() + end) == w.bytes);
    ranges.push_back({b, end});
  }
  // The tensors tile the data section exactly: sorted ranges are back to back from 0 to its end.
  std::sort(ranges.begin(), ranges.end());
  uint64_t at = 0;
  for (auto [b, e] : ranges) {
    CHECK(b == at);
    at = e;
  }
  CHECK(at == p.data.size());
  uint64_t total = 4 * 6 + 8 * 4 + 4 * 5 + 4 * 1 + 0;  // w + d + idx + s + e
  CHECK(file.size() == 8 + p.header_len + total);
}

TEST_CASE("train/safetensors: reads files laid out by other writers (no padding, no metadata, any order)") {
  TempDir tmp("foreign");
  std::string path = tmp.file("foreign.safetensors");
  // "b" is stored before "a" in the data section, a zero-size tensor sits between them, no __metadata__.
  std::vector<float> a = {1.0f, 2.0f};
  std::vector<int32_t> b = {-5};
  Bytes data = bytes_of(b);
  Bytes ab = bytes_of(a);
  data.insert(data.end(), ab.begin(), ab.end());
  json h = {{"a", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {4, 12}}}},
            {"z", {{"dtype", "F64"}, {"shape", {0}}, {"data_offsets", {4, 4}}}},
            {"b", {{"dtype", "I32"}, {"shape", {1}}, {"data_offsets", {0, 4}}}}};
  spit(path, raw_file(h.dump(), data));
  SafeTensors r = tinyds::read_safetensors(path);
  CHECK(r.metadata.empty());
  CHECK(r.get_f32("a", {2}, "test") == a);
  CHECK(r.get_i32("b", {1}, "test") == b);
  CHECK(r.tensors.at("z").bytes.empty());
}

TEST_CASE("train/safetensors: get_f32 / get_i32 check presence, shape and dtype") {
  SafeTensors st = Sample().build();
  std::string m = error_of([&] { st.get_f32("w", {3, 2}, "loading layer 0"); });
  check_contains(m, {"loading layer 0", "'w'", "[2, 3]", "[3, 2]"});
  m = error_of([&] { st.get_f32("w", {6}, "ckpt"); });  // same numel, different rank: still an error
  check_contains(m, {"ckpt", "'w'", "[2, 3]", "[6]"});
  m = error_of([&] { st.get_i32("w", {2, 3}, "ckpt"); });
  check_contains(m, {"ckpt", "'w'", "F32", "I32"});
  m = error_of([&] { st.get_f32("idx", {5}, "ckpt"); });
  check_contains(m, {"ckpt", "'idx'", "I32", "F32"});
  m = error_of([&] { st.get_f32("missing", {1}, "ckpt"); });
  check_contains(m, {"ckpt", "'missing'"});
  m = error_of([&] { st.shape_of("missing", "ckpt"); });
  check_contains(m, {"ckpt", "'missing'"});
  m = error_of([&] { st.put_f32("bad", {2, -1}, nullptr); });
  check_contains(m, {"'bad'", "-1"});
  float one = 1.0f;
  m = error_of([&] { st.put_f32("__metadata__", {1}, &one); });
  check_contains(m, {"__metadata__"});
}

TEST_CASE("train/safetensors: write replaces the file atomically and leaves no .tmp behind") {
  TempDir tmp("atomic");
  std::string path = tmp.file("ckpt.safetensors");
  Sample s;
  tinyds::write_safetensors(path, s.build());
  SafeTensors second;
  std::vector<float> v = {7.0f, 8.0f};
  second.put_f32("v", {2}, v.data());
  tinyds::write_safetensors(path, second);  // overwrites the existing file
  CHECK_FALSE(fs::exists(path + ".tmp"));
  int n_files = 0;
  for (const auto& entry : fs::directory_iterator(tmp.dir)) n_files += entry.is_regular_file();
  CHECK(n_files == 1);
  SafeTensors r = tinyds::read_safetensors(path);
  CHECK(r.tensors.size() == 1);
  CHECK(r.get_f32("v", {2}, "test") == v);
}

TEST_CASE("train/safetensors: write errors name the path and leave nothing behind") {
  TempDir tmp("write_err");
  std::string path = tmp.file("no_such_dir/ckpt.safetensors");
  std::string m = error_of([&] { tinyds::write_safetensors(path, Sample().build()); });
  check_contains(m, {path});
  CHECK(m.rfind(path, 0) == 0);
  CHECK_FALSE(fs::exists(tmp.dir / "no_such_dir"));

  // A tensor whose byte count does not match its shape (the map is public) is refused before anything is written.
  SafeTensors bad = Sample().build();
  bad.tensors["w"].bytes.pop_back();
  std::string ok_path = tmp.file("bad.safetensors");
  m = error_of([&] { tinyds::write_safetensors(ok_path, bad); });
  check_contains(m, {"'w'", "[2, 3]"});
  CHECK_FALSE(fs::exists(ok_path));
  CHECK_FALSE(fs::exists(ok_path + ".tmp"));
}

TEST_CASE("train/safetensors: reading a missing file or a directory is an error naming the path") {
  TempDir tmp("missing");
  expect_read_error(tmp.file("absent.safetensors"), {"cannot open"});
  expect_read_error(tmp.dir.string(), {"not a regular file"});
}
