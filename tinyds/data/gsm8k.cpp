// tinyds/data/gsm8k.cpp — GSM8K JSONL reader and writer (see gsm8k.h).
//
// Shapes: none (text only).
// Every reader error reads "FILE:LINE: reason" (LINE 1-based), so an editor can jump to the bad line.
// Lines are parsed with nlohmann::json; a trailing '\r' (a file saved with Windows line endings) is dropped.
#include "tinyds/data/gsm8k.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tinyds/core/error.h"
#include "tinyds/data/gsm8k_text.h"

namespace tinyds {

namespace {

bool is_blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

std::string string_field(const nlohmann::json& j, const char* field, const std::string& path, int line) {
  auto it = j.find(field);
  if (it == j.end()) throw_error(path, ":", line, ": missing field \"", field, "\"");
  if (!it->is_string())
    throw_error(path, ":", line, ": field \"", field, "\" is not a string (it is a ", it->type_name(), ")");
  return it->get<std::string>();
}

// "  -123,456...  ": an integer (sign, digits, thousands commas) that parse_final_answer refused for its length.
bool is_long_integer(const std::string& s) {
  const std::size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t\r\n");
  if (b == std::string::npos) return false;
  int digits = 0;
  for (std::size_t i = b; i <= e; i++) {
    const char c = s[i];
    if (c >= '0' && c <= '9') digits++;
    else if (!(c == ',' || (c == '-' && i == b))) return false;
  }
  return digits > 18;
}

// One JSONL line -> Problem (level 0: read from a file).
Problem parse_line(const std::string& text, const std::string& path, int line) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    throw_error(path, ":", line, ": bad JSON (", e.what(), ")");
  }
  if (!j.is_object()) throw_error(path, ":", line, ": expected a JSON object, got a ", j.type_name());
  Problem p;
  p.question = string_field(j, "question", path, line);
  p.answer = string_field(j, "answer", path, line);
  std::optional<int64_t> v = parse_final_answer(p.answer);
  if (!v) {
    size_t hash = p.answer.rfind("####");
    if (hash == std::string::npos) throw_error(path, ":", line, ": answer has no '####' final-answer line");
    if (is_long_integer(p.answer.substr(hash + 4)))
      throw_error(path, ":", line, ": final answer '", p.answer.substr(hash + 4),
                  "' after '####' is out of range (at most 18 digits)");
    throw_error(path, ":", line, ": final answer '", p.answer.substr(hash + 4),
                "' after '####' is not an integer (expected e.g. '#### 72' or '#### 1,000')");
  }
  p.final_answer = *v;
  return p;
}

}  // namespace

std::vector<Problem> read_gsm8k_jsonl(const std::string& path, bool fold) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(path, ": cannot open for reading (", std::strerror(errno), ")");
  return read_gsm8k_jsonl(in, path, fold);
}

std::vector<Problem> read_gsm8k_jsonl(std::istream& in, const std::string& path, bool fold) {
  std::vector<Problem> problems;
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    line++;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (is_blank(text)) continue;
    check_gsm8k_line(text, path, line, fold);
    if (fold)  // a raw tab is not valid inside a JSON string; outside one it is whitespace either way
      for (char& c : text) c = c == '\t' ? ' ' : c;
    Problem p = parse_line(text, path, line);
    if (fold) { p.question = ascii_fold(p.question); p.answer = ascii_fold(p.answer); }
    check_alphabet(p.question, path + ":" + std::to_string(line) + ": question");
    check_alphabet(p.answer, path + ":" + std::to_string(line) + ": answer");
    problems.push_back(std::move(p));
  }
  if (in.bad()) throw_error(path, ":", line, ": read error");
  // An empty file is reported at line 1 (there is no line 0), a file of blank lines at its last line.
  if (problems.empty()) throw_error(path, ":", std::max(line, 1), ": no problems in the file (empty or only blank lines)");
  return problems;
}

void write_gsm8k_jsonl(const std::string& path, const std::vector<Problem>& problems) {
  // Written to a temporary file and renamed, so a reader never sees a half-written file.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw_error(tmp, ": cannot open for writing (", std::strerror(errno), ")");
    for (size_t i = 0; i < problems.size(); i++) {
      // ordered_json keeps "question" before "answer", as in the GSM8K files.
      nlohmann::ordered_json j;
      j["question"] = problems[i].question;
      j["answer"] = problems[i].answer;
      try {
        out << j.dump() << '\n';
      } catch (const nlohmann::json::type_error& e) {  // text that is not valid UTF-8
        out.close();
        std::remove(tmp.c_str());
        throw_error(path, ": problem ", i, " cannot be written as JSON (", e.what(), ")");
      }
    }
    out.flush();
    if (!out) {
      out.close();
      std::remove(tmp.c_str());
      throw_error(tmp, ": write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    throw_error(path, ": cannot rename ", tmp, " into place (", std::strerror(err), ")");
  }
}

}  // namespace tinyds
