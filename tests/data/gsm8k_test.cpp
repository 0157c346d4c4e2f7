// tests/data/gsm8k_test.cpp — the final-answer parser and the GSM8K JSONL reader/writer.
#include <doctest/doctest.h>

#include "tests/util/error_util.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/data/generator.h"
#include "tinyds/data/gsm8k.h"
#include "tinyds/data/problem.h"

namespace fs = std::filesystem;
using tinyds::Problem;

namespace {

using tinyds_test::error_of;
using tinyds_test::has;

// A fresh directory under the system temp dir, removed with everything in it when the test ends.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("tinyds_test_data_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& content) const {
    std::string p = (path / name).string();
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
};

std::optional<int64_t> some(int64_t v) { return v; }

}  // namespace

TEST_CASE("data/gsm8k: parse_final_answer reads the integer after the last ####") {
  CHECK(tinyds::parse_final_answer("#### 72") == some(72));
  CHECK(tinyds::parse_final_answer("####72") == some(72));
  CHECK(tinyds::parse_final_answer("#### 1,000") == some(1000));
  CHECK(tinyds::parse_final_answer("#### 12,345,678") == some(12345678));
  CHECK(tinyds::parse_final_answer("#### -5") == some(-5));
  CHECK(tinyds::parse_final_answer("#### 0") == some(0));
  CHECK(tinyds::parse_final_answer("#### 7\n") == some(7));  // trailing whitespace is fine
  CHECK(tinyds::parse_final_answer("48/2 = <<48/2=24>>24\n#### 3\nthen #### 4") == some(4));  // the LAST ####
  CHECK(tinyds::parse_final_answer("#### 999999999999999999") == some(999999999999999999LL));

  const char* rejected[] = {"72",            "no marker at all", "#### 12.5", "#### abc", "#### ", "####",
                            "#### 1,00",     "#### 1,0000",      "#### 1000,000", "#### ,100", "#### 1,",
                            "#### 72 apples", "#### -",          "#### +5",  "#### 4\n#### x",
                            "#### 99999999999999999999"};
  for (const char* s : rejected) {
    INFO("text: ", s);
    CHECK_FALSE(tinyds::parse_final_answer(s).has_value());
  }
}

TEST_CASE("data/gsm8k: the prompt is the question and a newline") {
  Problem p;
  p.question = "Tom has 12 apples. He buys 7 more. How many apples now?";
  p.answer = "12+7=<<12+7=19>>19\n#### 19";
  CHECK(tinyds::prompt_text(p) == p.question + "\n");
}

TEST_CASE("data/gsm8k: write then read gives the same problems") {
  TempDir dir;
  std::vector<Problem> ps = tinyds::generate_problems(2, 200, 3, tinyds::Split::train);
  // Characters JSON must escape (tabs and non-ASCII text are outside the tokenizer's alphabet, so the reader
  // refuses them: tests/data/gsm8k_text_test.cpp).
  Problem odd;
  odd.question = "Quote \" backslash \\ slash / {braces}?";
  odd.answer = "a line\n#### -12";
  odd.final_answer = -12;
  ps.push_back(odd);
  std::string path = (dir.path / "out.jsonl").string();
  tinyds::write_gsm8k_jsonl(path, ps);
  CHECK_FALSE(fs::exists(path + ".tmp"));  // renamed into place

  std::vector<Problem> back = tinyds::read_gsm8k_jsonl(path);
  REQUIRE(back.size() == ps.size());
  for (size_t i = 0; i < ps.size(); i++) {
    CHECK(back[i].question == ps[i].question);
    CHECK(back[i].answer == ps[i].answer);
    CHECK(back[i].final_answer == ps[i].final_answer);
    CHECK(back[i].level == 0);  // read from a file
  }
  // GSM8K's layout: one compact object per line, "question" first.
  std::ifstream in(path);
  std::string first;
  std::getline(in, first);
  CHECK(first.rfind("{\"question\":", 0) == 0);
  CHECK_FALSE(has(first, "\n"));
  // Writing again replaces the file.
  tinyds::write_gsm8k_jsonl(path, {odd});
  CHECK(tinyds::read_gsm8k_jsonl(path).size() == 1);
}

TEST_CASE("data/gsm8k: reads real GSM8K-style lines") {
  TempDir dir;
  // Written by hand in the style of the GSM8K release: spaces around '=', calculator annotations,
  // thousands separators, an extra field, a blank line, a Windows line ending, a \u escape (the euro sign, folded to EUR).
  std::string content =
      "{\"question\": \"Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
      "May. How many clips did Natalia sell altogether in April and May?\", \"answer\": \"Natalia sold 48/2 = "
      "<<48/2=24>>24 clips in May.\\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and "
      "May.\\n#### 72\"}\n"
      "\n"
      "{\"id\": 17, \"question\": \"A lot costs 10 \\u20ac per m. How much for 100 m?\", \"answer\": "
      "\"10*100 = <<10*100=1000>>1000\\n#### 1,000\"}\r\n"
      "{\"answer\": \"He is 5-8 = <<5-8=-3>>-3 short.\\n#### -3\", \"question\": \"How short?\"}\n";
  std::string path = dir.write("gsm8k_test.jsonl", content);
  // The euro sign is outside the tokenizer's alphabet: read with ascii_fold it becomes "EUR" (gsm8k_text.h).
  std::vector<Problem> ps = tinyds::read_gsm8k_jsonl(path, /*ascii_fold=*/true);
  REQUIRE(ps.size() == 3);
  CHECK(ps[0].final_answer == 72);
  CHECK(has(ps[0].answer, "<<48/2=24>>24"));
  CHECK(ps[0].question.rfind("Natalia sold", 0) == 0);
  CHECK(ps[1].final_answer == 1000);
  CHECK(ps[1].question == "A lot costs 10 EUR per m. How much for 100 m?");  // \u20ac folded
  CHECK(ps[2].final_answer == -3);
  CHECK(ps[2].question == "How short?");
}

TEST_CASE("data/gsm8k: bad input is an error naming the file, the line and the reason") {
  TempDir dir;
  const std::string ok = "{\"question\": \"q\", \"answer\": \"#### 1\"}\n";
  struct Case {
    const char* name;
    std::string content;
    int line;
    const char* reason;
  };
  const Case cases[] = {
      {"bad_json.jsonl", ok + "{\"question\": \"q\", \"answer\": }\n", 2, "bad JSON"},
      {"not_object.jsonl", ok + ok + "[1, 2]\n", 3, "JSON object"},
      {"no_question.jsonl", "{\"answer\": \"#### 1\"}\n", 1, "missing field \"question\""},
      {"no_answer.jsonl", ok + "{\"question\": \"q\"}\n", 2, "missing field \"answer\""},
      {"number_question.jsonl", "{\"question\": 5, \"answer\": \"#### 1\"}\n", 1, "\"question\" is not a string"},
      {"null_answer.jsonl", "{\"question\": \"q\", \"answer\": null}\n", 1, "\"answer\" is not a string"},
      {"no_hashes.jsonl", "{\"question\": \"q\", \"answer\": \"so 72\"}\n", 1, "no '####'"},
      {"decimal.jsonl", ok + "\n\n{\"question\": \"q\", \"answer\": \"#### 12.5\"}\n", 4, "not an integer"},
      {"empty.jsonl", "", 1, "no problems"},
      {"blank.jsonl", "\n  \n\n", 3, "no problems"},
  };
  for (const Case& c : cases) {
    std::string path = dir.write(c.name, c.content);
    std::string msg = error_of([&] { tinyds::read_gsm8k_jsonl(path); });
    INFO("case ", c.name, ": ", msg);
    CHECK(has(msg, path + ":" + std::to_string(c.line) + ":"));
    CHECK(has(msg, c.reason));
  }
  std::string missing = (dir.path / "does_not_exist.jsonl").string();
  std::string msg = error_of([&] { tinyds::read_gsm8k_jsonl(missing); });
  CHECK(has(msg, missing));
  CHECK(has(msg, "cannot open"));
}

TEST_CASE("data/gsm8k: writing where no file can be made is an error naming the path") {
  TempDir dir;
  std::string path = (dir.path / "no_such_dir" / "out.jsonl").string();
  std::string msg = error_of([&] { tinyds::write_gsm8k_jsonl(path, {}); });
  CHECK(has(msg, path));
  CHECK(has(msg, "cannot open for writing"));
}

TEST_CASE("data/gsm8k: a 20-digit final answer is reported as out of range, not as 'not an integer'") {
  TempDir dir;
  const std::string path = dir.write("long.jsonl", "{\"question\": \"q\", \"answer\": \"#### 12345678901234567890\"}\n");
  const std::string msg = error_of([&] { tinyds::read_gsm8k_jsonl(path); });
  CHECK_MESSAGE(has(msg, path + ":1:"), msg);
  CHECK_MESSAGE(has(msg, "out of range"), msg);
  CHECK_MESSAGE(!has(msg, "not an integer"), msg);
}

TEST_CASE("data/gsm8k: a JSON number too large for a double is a bad-JSON error naming the line") {
  // nlohmann::json reports 1e400 as out_of_range, not parse_error: found by tests/fuzz/gsm8k_fuzz.cpp.
  TempDir dir;
  const std::string path = dir.write("big.jsonl", "{\"question\": \"q\", \"answer\": \"#### 1\", \"id\": 1e400}\n");
  const std::string msg = error_of([&] { tinyds::read_gsm8k_jsonl(path); });
  CHECK_MESSAGE(has(msg, path + ":1: bad JSON"), msg);
}
