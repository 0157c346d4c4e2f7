// tinyds/data/drills.cpp — see drills.h.
#include "tinyds/data/drills.h"

#include "tinyds/core/error.h"

namespace tinyds {

Problem drill_from(const Problem& p) {
  // First answer line: "67*7=<<67*7=469>>469"
  const std::string line = p.answer.substr(0, p.answer.find('\n'));
  const std::size_t eq = line.find('='), open = line.find("<<"), close = line.find(">>");
  if (eq == std::string::npos || open == std::string::npos || close == std::string::npos || eq == 0 || open < eq)
    throw_error("drill: the answer of \"", p.question, "\" does not start with a calculation line \"a op b=<<...>>c\"");
  Problem d;
  d.question = line.substr(0, eq);
  const std::string result = line.substr(close + 2);
  d.answer = line + "\n#### " + result;
  std::optional<int64_t> v = parse_final_answer(d.answer);
  if (!v) throw_error("drill: the first result of \"", p.question, "\" is not an integer: '", result, "'");
  d.final_answer = *v;
  d.level = p.level;
  return d;
}

std::vector<Problem> make_drills(const std::vector<Problem>& problems, int n) {
  std::vector<Problem> out;
  if (problems.empty()) return out;
  out.reserve(n);
  for (int i = 0; i < n; i++) out.push_back(drill_from(problems[i % problems.size()]));
  return out;
}

}  // namespace tinyds
