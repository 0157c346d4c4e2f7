// tinyds/data/templates.cpp — scenario templates and names for the generator (see templates.h).
//
// Shapes: none (text only).
// Each template reads naturally for all four operators, because a later step may use any of them:
//   clause[0] +   clause[1] -   clause[2] * (operand 2..9)   clause[3] / (divisor 2..9, written "1/{b}").
#include "tinyds/data/templates.h"

#include "tinyds/core/error.h"

namespace tinyds {
namespace data_detail {

const std::vector<Template>& templates() {
  static const std::vector<Template> kTemplates = {
      {"shopping", "{N} has {a} apples.", "{p}",
       {"buys {b} more", "sells {b}", "gets {b} times as many", "keeps 1/{b}"}, ", then ", "How many apples now?", {}},
      {"sharing", "{N} has {a} sweets.", "{p}",
       {"gets {b} more", "gives away {b}", "swaps for {b} times as many", "shares, keeping 1/{b}"}, ", then ",
       "How many sweets now?", {}},
      // Ages: each step is a new relative, compared with the one before ("Dad is 3 times as old").
      {"ages", "{N} is {a}.", "",
       {"{R} is {b} older", "{R} is {b} younger", "{R} is {b} times as old", "{R} is 1/{b} as old"}, ", and ",
       "How old is {R}?", {"Mom", "Dad", "Gran", "Gramps"}},
      {"rates", "{N} reads {a} pages daily.", "{p}",
       {"gets {b} faster", "slows by {b}", "gets {b} times faster", "slows to 1/{b}"}, ", then ",
       "What is {o} rate now?", {}},
      {"distances", "A trip is {a} km long.", "{N}",
       {"adds {b} km", "cuts {b} km", "scales it by {b}", "cuts it to 1/{b}"}, ", then ",
       "How many km now?", {}},
      {"baking", "A cake needs {a} g of flour.", "{N}",
       {"adds {b} g", "removes {b} g", "scales it by {b}", "takes 1/{b} of it"}, ", then ", "How many grams now?", {}},
      {"savings", "{N} has {a} dollars.", "{p}",
       {"earns {b} more", "spends {b}", "grows it {b} times", "keeps 1/{b} of it"}, ", then ",
       "How many dollars now?", {}},
      {"books", "A library has {a} books.", "it",
       {"buys {b} more", "lends out {b}", "grows to {b} times as many", "keeps 1/{b}"}, ", then ",
       "How many books now?", {}},
      {"garden", "A garden has {a} roses.", "it",
       {"gets {b} more", "loses {b}", "grows to {b} times as many", "shrinks to 1/{b}"}, ", then ",
       "How many roses now?", {}},
      {"bus", "A bus has {a} people.", "",
       {"{b} get on", "{b} get off", "the crowd grows {b} times", "only 1/{b} stay"}, ", then ",
       "How many people now?", {}},
  };
  return kTemplates;
}

const std::vector<Name>& names() {
  // Short names keep questions short; half he, half she.
  static const std::vector<Name> kNames = {
      {"Tom", false},  {"Ben", false},  {"Sam", false},  {"Leo", false},  {"Max", false},
      {"Omar", false}, {"Raj", false},  {"Ivan", false}, {"Carl", false}, {"Jack", false},
      {"Ann", true},   {"Mia", true},   {"Zoe", true},   {"Ava", true},   {"Lily", true},
      {"Emma", true},  {"Nina", true},  {"Sara", true},  {"Lucy", true},  {"Rosa", true},
  };
  return kNames;
}

std::string fill(const char* fmt, const Name& who, const std::string& a, const std::string& b,
                 const std::string& step_subject) {
  std::string out;
  for (const char* c = fmt; *c; c++) {
    if (*c != '{') { out += *c; continue; }
    // Every placeholder is exactly three characters: '{', a letter, '}'.
    TINYDS_ASSERT(c[1] && c[2] == '}', "bad placeholder in template \"", fmt, "\"");
    switch (c[1]) {
      case 'N': out += who.name; break;
      case 'p': out += who.she ? "she" : "he"; break;
      case 'o': out += who.she ? "her" : "his"; break;
      case 'a': out += a; break;
      case 'b': out += b; break;
      case 'R': out += step_subject; break;
      default: TINYDS_ASSERT(false, "unknown placeholder in template \"", fmt, "\"");
    }
    c += 2;
  }
  return out;
}

}  // namespace data_detail
}  // namespace tinyds
