// tinyds/data/tokenizer.cpp — character-level tokenizer (see tokenizer.h).
//
// Shapes: none (token ids are flat std::vector<int> of length = number of characters).
// Default vocabulary, 101 ids:
//   0 <pad>  1 <bos>  2 <eos>  3 <think>  4 </think>  5 '\n'  6 ' '  7 '!'  ...  100 '~'
// A checkpoint stores the id -> string table (to_json), so decoding never depends on this file's defaults.
#include "tinyds/data/tokenizer.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"

namespace tinyds {

namespace {

// Names of the special tokens, in id order (PAD, BOS, EOS, THINK, END_THINK).
const char* const kSpecials[] = {"<pad>", "<bos>", "<eos>", "<think>", "</think>"};
constexpr int kNumSpecials = 5;

// How a byte is shown in an error message: 'a' when printable, \xNN otherwise (tab, '\r', UTF-8 bytes).
std::string show_byte(unsigned char c) {
  char buf[16];
  if (c >= 0x20 && c <= 0x7e) std::snprintf(buf, sizeof buf, "'%c'", c);
  else std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(c));
  return buf;
}

}  // namespace

Tokenizer::Tokenizer() {
  for (int i = 0; i < kNumSpecials; i++) id_to_str_.push_back(kSpecials[i]);
  id_to_str_.push_back("\n");
  for (int c = ' '; c <= '~'; c++) id_to_str_.push_back(std::string(1, static_cast<char>(c)));
  for (int& v : char_to_id_) v = -1;
  for (int id = kNumSpecials; id < static_cast<int>(id_to_str_.size()); id++)
    char_to_id_[static_cast<unsigned char>(id_to_str_[id][0])] = id;
}

int Tokenizer::vocab_size() const { return static_cast<int>(id_to_str_.size()); }

std::vector<int> Tokenizer::encode(const std::string& s) const {
  std::vector<int> ids(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    // unsigned char: bytes >= 0x80 (UTF-8 continuation bytes, 'é' = C3 A9) must not index negatively.
    unsigned char c = static_cast<unsigned char>(s[i]);
    int id = char_to_id_[c];
    if (id < 0)
      throw_error("tokenizer: character ", show_byte(c), " at position ", i,
                  " is not in the vocabulary (it holds '\\n' and printable ASCII ' '..'~'; "
                  "replace tabs, '\\r' and non-ASCII characters)");
    ids[i] = id;
  }
  return ids;
}

std::string Tokenizer::token_string(int id) const {
  if (id < 0 || id >= vocab_size())
    throw_error("tokenizer: token id ", id, " is outside the vocabulary (0..", vocab_size() - 1, ")");
  return id_to_str_[id];
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::string s;
  s.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); i++) {
    if (ids[i] < 0 || ids[i] >= vocab_size())
      throw_error("tokenizer: token id ", ids[i], " at position ", i, " is outside the vocabulary (0..",
                  vocab_size() - 1, ")");
    s += id_to_str_[ids[i]];
  }
  return s;
}

nlohmann::json Tokenizer::to_json() const {
  nlohmann::json j;
  j["type"] = "char";
  j["tokens"] = id_to_str_;
  return j;
}

Tokenizer Tokenizer::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw_error(where, ": tokenizer: expected a JSON object, got ", j.type_name());
  if (!j.contains("type") || !j["type"].is_string() || j["type"].get<std::string>() != "char")
    throw_error(where, ": tokenizer: field \"type\" must be the string \"char\"");
  if (!j.contains("tokens") || !j["tokens"].is_array())
    throw_error(where, ": tokenizer: field \"tokens\" must be an array of strings");
  const nlohmann::json& toks = j["tokens"];
  if (toks.size() < static_cast<size_t>(kNumSpecials))
    throw_error(where, ": tokenizer: \"tokens\" has ", toks.size(), " entries, fewer than the ", kNumSpecials,
                " special tokens");

  Tokenizer t;
  t.id_to_str_.clear();
  for (int& v : t.char_to_id_) v = -1;
  for (size_t id = 0; id < toks.size(); id++) {
    if (!toks[id].is_string()) throw_error(where, ": tokenizer: tokens[", id, "] is not a string");
    std::string s = toks[id].get<std::string>();
    if (id < static_cast<size_t>(kNumSpecials)) {
      // The special ids are fixed constants (Tokenizer::PAD ...), so a file must agree with them.
      if (s != kSpecials[id])
        throw_error(where, ": tokenizer: tokens[", id, "] is \"", s, "\", expected \"", kSpecials[id], "\"");
    } else {
      if (s.size() != 1 || static_cast<unsigned char>(s[0]) >= 0x80)
        throw_error(where, ": tokenizer: tokens[", id, "] must be one ASCII character, got \"", s, "\"");
      unsigned char c = static_cast<unsigned char>(s[0]);
      if (t.char_to_id_[c] >= 0)
        throw_error(where, ": tokenizer: tokens[", id, "] repeats character ", show_byte(c), " (first at tokens[",
                    t.char_to_id_[c], "])");
      t.char_to_id_[c] = static_cast<int>(id);
    }
    t.id_to_str_.push_back(s);
  }
  return t;
}

}  // namespace tinyds
