// tests/data/gsm8k_text_test.cpp — GSM8K files are checked against the tokenizer's alphabet when read: every
// character outside it is reported as FILE:LINE:COLUMN (1-based); --ascii-fold maps the typographic ones.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "tests/util/error_util.h"
#include "tests/util/fs_util.h"
#include "tinyds/data/gsm8k.h"
#include "tinyds/data/gsm8k_text.h"
#include "tinyds/data/tokenizer.h"

using namespace tinyds;
using tinyds::test::temp_dir;
using tinyds_test::error_of;
using tinyds_test::has;

namespace {
std::string write_file(const std::string& dir, const std::string& text) {
  const std::string path = dir + "/p.jsonl";
  std::ofstream(path, std::ios::binary) << text;
  return path;
}
}  // namespace

TEST_CASE("data/gsm8k_text: characters outside the alphabet are reported as FILE:LINE:COLUMN") {
  const std::string dir = temp_dir("gsm8k_text");
  // Line 2, as an editor shows it:  {"question": "Tom’s 3\tapples", "answer": "3 €\n#### 3"}
  // Counted by hand (1-based characters): ’ is character 18, the escape \t starts at 22 (its backslash), € is 46.
  const std::string line2 = "{\"question\": \"Tom\xE2\x80\x99s 3\\tapples\", \"answer\": \"3 \xE2\x82\xAC\\n#### 3\"}";
  const std::string path = write_file(dir, "{\"question\": \"ok\", \"answer\": \"#### 1\"}\n" + line2 + "\n");
  const std::string msg = error_of([&] { read_gsm8k_jsonl(path); });
  CHECK_MESSAGE(has(msg, path + ":2:18: character U+2019"), msg);
  CHECK_MESSAGE(has(msg, path + ":2:22: character TAB"), msg);
  CHECK_MESSAGE(has(msg, path + ":2:46: character U+20AC"), msg);
  CHECK_MESSAGE(has(msg, "--ascii-fold"), msg);
}

TEST_CASE("data/gsm8k_text: --ascii-fold maps typographic characters and the file then tokenizes") {
  const std::string dir = temp_dir("gsm8k_fold");
  const std::string q = "\xE2\x80\x9CTom\xE2\x80\x99s\xE2\x80\x9D \xE2\x80\x94 3 \xC3\x97 2 \xC3\xB7 1\xC2\xA0\xE2\x82\xAC and \xC2\xA3\\t\xE2\x80\x98x\xE2\x80\x93y";
  const std::string path = write_file(dir, "{\"question\": \"" + q + "\", \"answer\": \"6\\n#### 6\"}\n");
  const std::vector<Problem> ps = read_gsm8k_jsonl(path, /*ascii_fold=*/true);
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].question == "\"Tom's\" - 3 * 2 / 1 EUR and GBP 'x-y");
  CHECK_NOTHROW(Tokenizer().encode(ps[0].question));
  // Without folding the same file is refused when read.
  CHECK(has(error_of([&] { read_gsm8k_jsonl(path); }), path + ":1:"));
  // A raw tab (invalid inside a JSON string) is folded before parsing.
  const std::string tab = write_file(dir, "{\"question\": \"a\tb\", \"answer\": \"#### 2\"}\n");
  CHECK(read_gsm8k_jsonl(tab, true)[0].question == "a b");
  // Characters of other fields (an id) are not the tokenizer's concern.
  const std::string extra = write_file(dir, "{\"id\": \"\xC3\xA9t\xC3\xA9\", \"question\": \"q\", \"answer\": \"#### 2\"}\n");
  CHECK(read_gsm8k_jsonl(extra).size() == 1);
}
