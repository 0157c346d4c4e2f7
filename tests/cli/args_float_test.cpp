// tests/cli/args_float_test.cpp — a float option that overflows float (finite as a double) is refused when
// parsed, and the options given are listed (what --resume checks).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/util/error_util.h"
#include "tinyds/cli/args.h"

using tinyds::Args;
using tinyds_test::error_of;
using tinyds_test::has;

namespace {
int parse(Args& a, std::vector<std::string> words) {
  words.insert(words.begin(), "cmd");
  std::vector<char*> p;
  for (std::string& w : words) p.push_back(&w[0]);
  return a.parse(static_cast<int>(p.size()), p.data());
}
}  // namespace

TEST_CASE("cli/args: a float option beyond float range is an error at parse time") {
  float lr = 1e-3f;
  Args a("tinyds sft", "test");
  a.add("--lr", lr, "learning rate");
  // 1e39 > FLT_MAX (3.4e38): it parses as a finite double and becomes inf as a float.
  const std::string msg = error_of([&] { parse(a, {"--lr", "1e39"}); });
  CHECK_MESSAGE(has(msg, "option --lr: '1e39'"), msg);
  CHECK_MESSAGE(has(msg, "float range"), msg);
  CHECK(lr == 1e-3f);  // unchanged
  Args b("tinyds sft", "test");
  b.add("--lr", lr, "learning rate");
  parse(b, {"--lr", "-3e38"});  // the edge of the range is still a float
  CHECK(lr == -3e38f);
}

TEST_CASE("cli/args: given_options lists exactly the options on the command line") {
  int steps = 1;
  float lr = 1;
  bool quiet = false;
  Args a("tinyds sft", "test");
  a.add("--steps", steps, "");
  a.add("--lr", lr, "");
  a.add_flag("--quiet", quiet, "");
  parse(a, {"--quiet", "--lr=0.5"});
  CHECK(a.given_options() == std::vector<std::string>{"--lr", "--quiet"});  // registration order
}
