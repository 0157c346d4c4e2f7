// tinyds/data/templates.h — the scenario templates behind the GSM8K-style generator (internal to data/).
//
// Shapes: none (text only).
// A problem is a chain of steps r = r op b over one tracked quantity. Its question is three parts:
//   start sentence        "Tom has 12 apples."                       ({a} = the first operand)
//   one clause sentence   "He buys 7 more, sells 3, then keeps 1/2 of them."   (one clause per step)
//   question sentence     "How many apples does he have?"
// Clauses are short and share one subject so that a level-4 question stays near 120 characters: the model
// trains at sequence length 128 on a laptop CPU, so every character costs time.
//
// Placeholders: {N} name, {p} he/she, {o} his/her, {a} first operand, {b} this step's operand,
// {R} this step's subject from `steps` (e.g. "her mom"; in the question, the last step's subject).
// The clause sentence is capitalised after rendering.
#pragma once
#include <string>
#include <vector>

namespace tinyds {
namespace data_detail {

struct Template {
  const char* name;       // "shopping"
  const char* start;      // "{N} has {a} apples."
  const char* subject;    // prefix of the clause sentence, e.g. "{p}"; "" when clauses carry their own subject
  const char* clause[4];  // per operator, in the order + - * /   e.g. "buys {b} more"
  const char* last_join;  // joins the last clause: ", then " or ", and "
  const char* question;   // "How many apples does {p} have?"
  const char* steps[4];   // per-step subjects for {R} (nullptr when unused)
};

struct Name {
  const char* name;
  bool she;
};

const std::vector<Template>& templates();
const std::vector<Name>& names();

// Replaces every placeholder in `fmt`. `a`, `b` are decimal numbers as text; `step_subject` fills {R}.
std::string fill(const char* fmt, const Name& who, const std::string& a, const std::string& b,
                 const std::string& step_subject);

}  // namespace data_detail
}  // namespace tinyds
