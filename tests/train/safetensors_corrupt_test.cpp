// tests/train/safetensors_corrupt_test.cpp — every kind of damaged safetensors file must give a tinyds::Error whose
// message starts with the file's path and names the problem: never a crash, never a silent success.
//
// Each case writes a good file with tinyds, then damages it with the independent helpers of tests/util/io_util.h
// (truncate, flip bytes, edit the JSON header with nlohmann, append bytes), or assembles a bad file by hand.
// Good file: "w" F32 (2, 3) and "idx" I32 (3), metadata {"k": "v"}.
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "tests/util/io_util.h"
#include "tinyds/train/safetensors.h"

using namespace io_test;

namespace {

std::string write_good(const TempDir& tmp, const std::string& name) {
  tinyds::SafeTensors st;
  st.metadata["k"] = "v";
  std::vector<float> w = {1, 2, 3, 4, 5, 6};
  std::vector<int32_t> idx = {7, 8, 9};
  st.put_f32("w", {2, 3}, w.data());
  st.put_i32("idx", {3}, idx.data());
  std::string path = tmp.file(name);
  tinyds::write_safetensors(path, st);
  tinyds::read_safetensors(path);  // the undamaged file is fine: the errors below come from the damage
  return path;
}

// The tensor whose data ends last (the one a truncation cuts into first).
std::string last_tensor(const json& h) {
  std::string best;
  uint64_t best_end = 0;
  for (auto it = h.begin(); it != h.end(); ++it)
    if (it.key() != "__metadata__" && it.value()["data_offsets"][1].get<uint64_t>() >= best_end) {
      best = it.key();
      best_end = it.value()["data_offsets"][1].get<uint64_t>();
    }
  return best;
}

void set_len(Bytes& f, uint64_t n) {
  for (int i = 0; i < 8; i++) f[i] = static_cast<uint8_t>(n >> (8 * i));
}

}  // namespace

TEST_CASE("train/safetensors_corrupt: safetensors truncation at every length is an error naming the part cut") {
  TempDir tmp("trunc");
  std::string good = write_good(tmp, "good.safetensors");
  Bytes full = slurp(good);
  RawParts p = split_file(good);
  std::string cut = tmp.file("cut.safetensors");
  for (std::size_t n = 0; n < full.size(); n++) {
    CAPTURE(n);
    spit(cut, Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)));
    if (n < 8) expect_read_error(cut, {"too short"});
    else if (n < 8 + p.header_len) expect_read_error(cut, {"header length", "past the end"});
    else {
      expect_read_error(cut, {"beyond the data section"});
      // The message names a tensor whose data the cut removed.
      std::string msg;
      try { tinyds::read_safetensors(cut); } catch (const tinyds::Error& e) { msg = e.what(); }
      bool names_cut_tensor = false;
      for (auto it = p.header.begin(); it != p.header.end(); ++it)
        if (it.key() != "__metadata__" && 8 + p.header_len + it.value()["data_offsets"][1].get<uint64_t>() > n)
          names_cut_tensor = names_cut_tensor || msg.find("'" + it.key() + "'") != std::string::npos;
      CHECK_MESSAGE(names_cut_tensor, msg);
    }
  }
}

TEST_CASE("train/safetensors_corrupt: safetensors a bad header length is an error") {
  TempDir tmp("len");
  std::string path = write_good(tmp, "f.safetensors");
  Bytes f = slurp(path);
  Bytes bad = f;
  set_len(bad, uint64_t(1) << 40);  // 1 TiB of header: refused before anything is parsed
  spit(path, bad);
  expect_read_error(path, {"unreasonably large"});
  set_len(bad, ~uint64_t(0));       // would overflow 8 + N
  spit(path, bad);
  expect_read_error(path, {"unreasonably large"});
  set_len(bad, f.size() - 8 + 1);   // one byte more than the rest of the file
  spit(path, bad);
  expect_read_error(path, {"past the end"});
  set_len(bad, 0);                  // empty header is not JSON
  spit(path, bad);
  expect_read_error(path, {"not valid JSON"});
}

TEST_CASE("train/safetensors_corrupt: safetensors header bytes that break the JSON are an error") {
  TempDir tmp("json");
  std::string path = write_good(tmp, "f.safetensors");
  Bytes f = slurp(path);
  uint64_t n = le64(f.data());
  std::string text(f.begin() + 8, f.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  std::size_t close = text.find_last_of('}');
  struct Damage { std::size_t at; uint8_t byte; };
  // Opening brace, closing brace, a quote, a byte in the middle made invalid UTF-8 / NUL.
  for (Damage d : {Damage{0, 'x'}, Damage{close, ' '}, Damage{text.find('"'), ' '}, Damage{n / 2, 0xFF},
                   Damage{n / 2, 0x00}}) {
    CAPTURE(d.at);
    Bytes bad = f;
    bad[8 + d.at] = d.byte;
    spit(path, bad);
    expect_read_error(path, {"not valid JSON"});
  }
  // Valid JSON that is not an object.
  spit(path, raw_file("[1, 2]", {}));
  expect_read_error(path, {"must be a JSON object"});
}

TEST_CASE("train/safetensors_corrupt: safetensors flipping any header byte never crashes and never throws anything but tinyds::Error") {
  TempDir tmp("fuzz");
  std::string path = write_good(tmp, "f.safetensors");
  Bytes f = slurp(path);
  uint64_t n = le64(f.data());
  int errors = 0, reads = 0;
  for (uint64_t i = 0; i < 8 + n; i++) {
    for (uint8_t x : {uint8_t(0x01), uint8_t(0xFF)}) {
      Bytes bad = f;
      bad[i] ^= x;
      spit(path, bad);
      reads++;
      try {
        tinyds::read_safetensors(path);  // success is possible (e.g. a changed metadata character)
      } catch (const tinyds::Error& e) {
        errors++;
        CHECK(std::string(e.what()).rfind(path, 0) == 0);
      }
    }
  }
  // Most single-byte changes break the length, the JSON syntax or a field; a reader that accepted almost
  // everything would be validating nothing.
  CHECK(errors > reads / 2);
}

TEST_CASE("train/safetensors_corrupt: safetensors edited tensor entries are errors naming the tensor and the field") {
  TempDir tmp("fields");
  std::string path = tmp.file("f.safetensors");
  struct Case { const char* what; void (*edit)(json&); std::vector<std::string> needles; };
  const Case cases[] = {
      {"unknown dtype", [](json& h) { h["w"]["dtype"] = "Q7"; }, {"'w'", "unknown dtype 'Q7'"}},
      {"dtype not a string", [](json& h) { h["w"]["dtype"] = 32; }, {"'w'", "'dtype'", "string"}},
      {"dtype changes the size", [](json& h) { h["w"]["dtype"] = "F64"; }, {"'w'", "F64", "needs 48"}},
      {"shape changes the size", [](json& h) { h["w"]["shape"] = {3, 3}; }, {"'w'", "[3, 3]", "needs 36"}},
      {"negative dims", [](json& h) { h["w"]["shape"] = {-2, -3}; }, {"'w'", "'shape'", "negative", "-2"}},
      {"shape not an array", [](json& h) { h["w"]["shape"] = "2x3"; }, {"'w'", "'shape'", "array"}},
      {"fractional dim", [](json& h) { h["w"]["shape"] = {2.5, 3}; }, {"'w'", "'shape'", "2.5"}},
      {"missing dtype", [](json& h) { h["w"].erase("dtype"); }, {"'w'", "missing field 'dtype'"}},
      {"missing shape", [](json& h) { h["idx"].erase("shape"); }, {"'idx'", "missing field 'shape'"}},
      {"missing offsets", [](json& h) { h["w"].erase("data_offsets"); }, {"'w'", "missing field 'data_offsets'"}},
      {"unknown field", [](json& h) { h["w"]["dtipe"] = "F32"; }, {"'w'", "unknown field 'dtipe'"}},
      {"entry not an object", [](json& h) { h["w"] = "F32"; }, {"'w'", "JSON object"}},
      {"offsets not a pair", [](json& h) { h["w"]["data_offsets"] = {0}; }, {"'w'", "'data_offsets'", "[begin, end]"}},
      {"offsets not numbers", [](json& h) { h["w"]["data_offsets"] = {"0", "24"}; }, {"'w'", "data_offsets begin"}},
      {"negative offset", [](json& h) { h["w"]["data_offsets"][0] = -4; }, {"'w'", "negative", "-4"}},
      {"begin after end", [](json& h) {
         h["w"]["data_offsets"] = {h["w"]["data_offsets"][1], h["w"]["data_offsets"][0]}; }, {"'w'", "after end"}},
      {"end past the data", [](json& h) {
         std::string t = last_tensor(h);
         h[t]["data_offsets"][0] = h[t]["data_offsets"][0].get<uint64_t>() + 4;
         h[t]["data_offsets"][1] = h[t]["data_offsets"][1].get<uint64_t>() + 4; }, {"beyond the data section"}},
      {"metadata not an object", [](json& h) { h["__metadata__"] = json::array({"k", "v"}); },
       {"__metadata__", "object"}},
      {"metadata value not a string", [](json& h) { h["__metadata__"]["k"] = 1; }, {"__metadata__", "'k'", "string"}},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.what));
    write_good(tmp, "f.safetensors");
    edit_header(path, c.edit);
    std::string msg;
    try {
      tinyds::read_safetensors(path);
    } catch (const tinyds::Error& e) {
      msg = e.what();
    }
    REQUIRE_MESSAGE(!msg.empty(), c.what, ": read succeeded");
    CHECK(msg.rfind(path, 0) == 0);
    for (const std::string& n : c.needles) CHECK_MESSAGE(msg.find(n) != std::string::npos, "'", n, "' not in: ", msg);
  }
}

TEST_CASE("train/safetensors_corrupt: safetensors overlapping tensors, holes and trailing bytes are errors") {
  TempDir tmp("cover");
  std::string path = tmp.file("f.safetensors");
  auto f32 = [](uint64_t b, uint64_t e, int64_t n) {
    return json{{"dtype", "F32"}, {"shape", {n}}, {"data_offsets", {b, e}}};
  };
  Bytes twelve(12, 0);
  // a = bytes 0..8, b = bytes 4..12: both sizes are right, but they share bytes 4..8.
  spit(path, raw_file(json{{"a", f32(0, 8, 2)}, {"b", f32(4, 12, 2)}}.dump(), twelve));
  expect_read_error(path, {"overlaps", "'a'", "'b'"});
  // a = bytes 0..4, b = bytes 8..12: bytes 4..8 belong to nobody.
  spit(path, raw_file(json{{"a", f32(0, 4, 1)}, {"b", f32(8, 12, 1)}}.dump(), twelve));
  expect_read_error(path, {"belong to no tensor", "'b'"});
  // Garbage appended to a good file.
  std::string good = write_good(tmp, "good.safetensors");
  Bytes g = slurp(good);
  for (char c : std::string("junk")) g.push_back(static_cast<uint8_t>(c));
  spit(good, g);
  expect_read_error(good, {"4 trailing bytes"});
  // Data but no tensors at all.
  spit(path, raw_file("{}", Bytes(3, 0)));
  expect_read_error(path, {"3 trailing bytes"});
}
