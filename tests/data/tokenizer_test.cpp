// tests/data/tokenizer_test.cpp — the character-level tokenizer: layout, round trips, errors, JSON.
#include <doctest/doctest.h>

#include "tests/util/error_util.h"

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "tinyds/core/error.h"
#include "tinyds/data/tokenizer.h"

using tinyds::Tokenizer;

namespace {

// The message of the tinyds::Error that f throws; "<no error>" when it throws nothing (so checks on it fail).
using tinyds_test::error_of;
using tinyds_test::has;

// Every character the default vocabulary should hold: '\n' and printable ASCII.
std::string all_vocab_chars() {
  std::string s = "\n";
  for (int c = 0x20; c <= 0x7e; c++) s += static_cast<char>(c);
  return s;
}

}  // namespace

TEST_CASE("data/tokenizer: default vocabulary is 5 specials, newline, printable ASCII") {
  Tokenizer tok;
  const int n_printable = '~' - ' ' + 1;  // 95
  CHECK(tok.vocab_size() == 5 + 1 + n_printable);
  CHECK(tok.token_string(Tokenizer::PAD) == "<pad>");
  CHECK(tok.token_string(Tokenizer::BOS) == "<bos>");
  CHECK(tok.token_string(Tokenizer::EOS) == "<eos>");
  CHECK(tok.token_string(Tokenizer::THINK) == "<think>");
  CHECK(tok.token_string(Tokenizer::END_THINK) == "</think>");
  // Ids after the specials: '\n' first, then ' '..'~' in ASCII order.
  CHECK(tok.encode("\n") == std::vector<int>{5});
  CHECK(tok.encode(" ") == std::vector<int>{6});
  CHECK(tok.encode("~") == std::vector<int>{5 + n_printable});
  CHECK(tok.encode("A") == std::vector<int>{6 + ('A' - ' ')});
  // encode never produces a special id, and distinct characters get distinct ids.
  std::vector<int> ids = tok.encode(all_vocab_chars());
  std::set<int> distinct(ids.begin(), ids.end());
  CHECK(distinct.size() == ids.size());
  for (int id : ids) CHECK(id >= 5);
}

TEST_CASE("data/tokenizer: encode then decode gives the text back") {
  Tokenizer tok;
  const std::string texts[] = {all_vocab_chars(), "",
                               "Tom has 12 apples.\n12+7=<<12+7=19>>19\n#### 19",
                               "{\"question\": \"a\\b\"} ~`|"};
  for (const std::string& s : texts) {
    std::vector<int> ids = tok.encode(s);
    CHECK(ids.size() == s.size());  // one token per character
    CHECK(tok.decode(ids) == s);
  }
}

TEST_CASE("data/tokenizer: a character outside the vocabulary names itself and its position") {
  Tokenizer tok;
  std::string msg = error_of([&] { tok.encode("abc\tdef"); });
  CHECK(has(msg, "\\x09"));
  CHECK(has(msg, "position 3"));

  // 'é' in UTF-8 is C3 A9: the first byte is reported, at the byte position.
  msg = error_of([&] { tok.encode("caf\xC3\xA9"); });
  CHECK(has(msg, "\\xC3"));
  CHECK(has(msg, "position 3"));

  msg = error_of([&] { tok.encode("line\r\n"); });
  CHECK(has(msg, "\\x0D"));
  CHECK(has(msg, "position 4"));

  msg = error_of([&] { tok.encode(std::string("a\0b", 3)); });
  CHECK(has(msg, "\\x00"));
  CHECK(has(msg, "position 1"));
}

TEST_CASE("data/tokenizer: decode renders special tokens and rejects ids outside the vocabulary") {
  Tokenizer tok;
  std::vector<int> ids = {Tokenizer::BOS, Tokenizer::THINK};
  std::vector<int> hi = tok.encode("hi");
  ids.insert(ids.end(), hi.begin(), hi.end());
  ids.push_back(Tokenizer::END_THINK);
  ids.push_back(Tokenizer::EOS);
  ids.push_back(Tokenizer::PAD);
  CHECK(tok.decode(ids) == "<bos><think>hi</think><eos><pad>");

  std::string msg = error_of([&] { tok.decode({6, tok.vocab_size()}); });
  CHECK(has(msg, std::to_string(tok.vocab_size())));
  CHECK(has(msg, "position 1"));
  CHECK(has(error_of([&] { tok.decode({-1}); }), "-1"));
  CHECK(has(error_of([&] { tok.token_string(tok.vocab_size()); }), std::to_string(tok.vocab_size())));
}

TEST_CASE("data/tokenizer: to_json / from_json round trip") {
  Tokenizer tok;
  nlohmann::json j = tok.to_json();
  CHECK(j["type"] == "char");
  REQUIRE(j["tokens"].is_array());
  CHECK(static_cast<int>(j["tokens"].size()) == tok.vocab_size());
  // Through text, as a checkpoint stores it.
  Tokenizer back = Tokenizer::from_json(nlohmann::json::parse(j.dump()), "ckpt.safetensors");
  CHECK(back.vocab_size() == tok.vocab_size());
  for (int id = 0; id < tok.vocab_size(); id++) CHECK(back.token_string(id) == tok.token_string(id));
  std::string s = all_vocab_chars();
  CHECK(back.encode(s) == tok.encode(s));

  // A smaller vocabulary (a checkpoint from a tokenizer without '~') keeps its own ids and rejects '~'.
  j["tokens"].erase(j["tokens"].size() - 1);
  Tokenizer small = Tokenizer::from_json(j, "old.ckpt");
  CHECK(small.vocab_size() == tok.vocab_size() - 1);
  CHECK(small.encode("A") == tok.encode("A"));
  CHECK(has(error_of([&] { small.encode("~"); }), "'~'"));
}

TEST_CASE("data/tokenizer: from_json rejects malformed vocabularies, naming where") {
  const std::string where = "run/ckpt_300.safetensors";
  nlohmann::json good = Tokenizer().to_json();
  auto check_bad = [&](const nlohmann::json& j, const std::string& reason) {
    std::string msg = error_of([&] { Tokenizer::from_json(j, where); });
    CHECK_MESSAGE(has(msg, where), msg);
    CHECK_MESSAGE(has(msg, reason), msg);
  };
  check_bad(nlohmann::json::array(), "object");
  nlohmann::json j = good;
  j["type"] = "bpe";
  check_bad(j, "\"type\"");
  j = good;
  j.erase("tokens");
  check_bad(j, "\"tokens\"");
  j = good;
  j["tokens"][1] = "<s>";  // the special ids are fixed
  check_bad(j, "tokens[1]");
  j = good;
  j["tokens"][10] = "ab";  // a non-special token must be one character
  check_bad(j, "tokens[10]");
  j = good;
  j["tokens"][11] = j["tokens"][10];  // a character twice
  check_bad(j, "tokens[11]");
  j = good;
  j["tokens"][12] = 7;
  check_bad(j, "tokens[12]");
  j = good;
  j["tokens"] = {"<pad>", "<bos>"};
  check_bad(j, "special");
}
