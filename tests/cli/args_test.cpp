// tests/cli/args_test.cpp — the command-line option parser (tinyds/cli/args.h).
//
// argv is built from string literals the way a shell would split them; argv[0] is the subcommand name.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "tinyds/cli/args.h"
#include "tinyds/core/error.h"

using tinyds::Args;

namespace {

// Owns the strings so that parse() gets a writable char** like main() does.
struct Argv {
  std::vector<std::string> s;
  std::vector<char*> p;
  Argv(std::initializer_list<std::string> args) : s(args) {
    s.insert(s.begin(), "cmd");
    for (std::string& x : s) p.push_back(&x[0]);
  }
  int argc() const { return static_cast<int>(p.size()); }
  char** argv() { return p.data(); }
};

// All option kinds with non-trivial defaults.
struct Opts {
  int steps = 100;
  int64_t big = -5;
  uint64_t seed = 1337;
  float lr = 0.003f;
  double beta = 0.5;
  std::string out = "runs/x";
  std::vector<int> levels = {1, 2};
  bool verbose = false;
  bool check = true;  // a true | false option (not a flag)
  std::string data;
  void add_to(Args& a) {
    a.add("--steps", steps, "optimizer steps");
    a.add("--big", big, "a 64-bit integer");
    a.add("--seed", seed, "random seed");
    a.add("--lr", lr, "learning rate");
    a.add("--beta", beta, "KL coefficient");
    a.add("--out", out, "output directory");
    a.add("--levels", levels, "difficulty levels");
    a.add_flag("--verbose", verbose, "print more");
    a.add("--check", check, "check the steps");
    a.add_required("--data", data, "input JSONL file");
  }
};

std::string parse_error(std::initializer_list<std::string> args) {
  Args a("tinyds test", "Testing.");
  Opts o;
  o.add_to(a);
  Argv v(args);
  try {
    a.parse(v.argc(), v.argv());
  } catch (const tinyds::Error& e) {
    return e.what();
  }
  return "";
}

void check_error(const std::string& msg, std::initializer_list<std::string> needles) {
  REQUIRE_MESSAGE(!msg.empty(), "expected a tinyds::Error");
  for (const std::string& n : needles) CHECK_MESSAGE(msg.find(n) != std::string::npos, "'", n, "' not in: ", msg);
}

}  // namespace

TEST_CASE("cli/args: parses every option kind, in both --x v and --x=v forms") {
  Args a("tinyds test", "Testing.");
  Opts o;
  o.add_to(a);
  Argv v({"--steps", "250", "--big=-9000000000", "--seed", "18446744073", "--lr=1e-4", "--beta", "-0.25",
          "--out", "a b/c=d", "--levels=3,1,4", "--verbose", "--check", "false", "--data", "train.jsonl"});
  REQUIRE(a.parse(v.argc(), v.argv()));
  CHECK(o.steps == 250);
  CHECK(o.big == -9000000000LL);
  CHECK(o.seed == 18446744073ull);
  CHECK(o.lr == 1e-4f);
  CHECK(o.beta == -0.25);
  CHECK(o.out == "a b/c=d");   // a value containing '=' in the two-token form is kept whole
  CHECK(o.levels == std::vector<int>{3, 1, 4});
  CHECK(o.verbose);
  CHECK_FALSE(o.check);
  CHECK(o.data == "train.jsonl");
  CHECK(a.given("--steps"));
  CHECK(a.given("--verbose"));
  // A 64-bit unsigned option takes its whole range (2^64 - 1 = 18446744073709551615).
  Args b("tinyds test", "Testing.");
  Opts p;
  p.add_to(b);
  Argv w({"--data", "d", "--seed", "18446744073709551615", "--big", "-9223372036854775808"});
  REQUIRE(b.parse(w.argc(), w.argv()));
  CHECK(p.seed == UINT64_MAX);
  CHECK(p.big == INT64_MIN);
  // A true | false option takes each spelling of either value; the last occurrence wins.
  auto check_after = [](std::initializer_list<std::string> args) {
    Args c("tinyds test", "Testing.");
    Opts q;
    q.add_to(c);
    Argv x(args);
    REQUIRE(c.parse(x.argc(), x.argv()));
    return q.check;
  };
  CHECK_FALSE(check_after({"--data", "d", "--check=false"}));
  CHECK_FALSE(check_after({"--data", "d", "--check", "off"}));
  CHECK_FALSE(check_after({"--data", "d", "--check=0"}));
  CHECK(check_after({"--data", "d", "--check=false", "--check", "true"}));
  CHECK(check_after({"--data", "d", "--check=off", "--check=on"}));
  CHECK(check_after({"--data", "d", "--check", "0", "--check", "1"}));
}

TEST_CASE("cli/args: untouched options keep their defaults and are not 'given'") {
  Args a("tinyds test", "Testing.");
  Opts o;
  o.add_to(a);
  Argv v({"--data=x.jsonl", "--out="});
  REQUIRE(a.parse(v.argc(), v.argv()));
  CHECK(o.steps == 100);
  CHECK(o.lr == 0.003f);
  CHECK(o.levels == std::vector<int>{1, 2});
  CHECK_FALSE(o.verbose);
  CHECK(o.out.empty());  // --out= sets an empty string explicitly
  CHECK(a.given("--out"));
  CHECK_FALSE(a.given("--steps"));
  CHECK_FALSE(a.given("--no-such-option"));
  // The last occurrence wins.
  Args b("tinyds test", "Testing.");
  Opts p;
  p.add_to(b);
  Argv w({"--data", "d", "--steps", "1", "--steps", "2"});
  REQUIRE(b.parse(w.argc(), w.argv()));
  CHECK(p.steps == 2);
}

TEST_CASE("cli/args: errors name the option and the value") {
  check_error(parse_error({"--data", "d", "--stpes", "3"}), {"unknown option", "'--stpes'"});
  check_error(parse_error({"--data", "d", "extra"}), {"unknown option", "'extra'"});  // stray positional
  check_error(parse_error({"--data", "d", "--steps"}), {"--steps", "needs a value"});
  check_error(parse_error({"--data", "d", "--steps", "12x"}), {"--steps", "'12x'", "integer"});
  check_error(parse_error({"--data", "d", "--steps", ""}), {"--steps", "integer"});
  check_error(parse_error({"--data", "d", "--steps", "3000000000"}), {"--steps", "3000000000", "32-bit"});
  check_error(parse_error({"--data", "d", "--seed", "-1"}), {"--seed", "'-1'", "non-negative"});
  check_error(parse_error({"--data", "d", "--lr", "fast"}), {"--lr", "'fast'", "number"});
  check_error(parse_error({"--data", "d", "--lr", "nan"}), {"--lr", "'nan'", "finite"});
  check_error(parse_error({"--data", "d", "--beta=1e999"}), {"--beta", "1e999"});
  check_error(parse_error({"--data", "d", "--levels", "1,x"}), {"--levels", "'x'"});
  check_error(parse_error({"--data", "d", "--levels", "1,,2"}), {"--levels", "integer"});
  check_error(parse_error({"--data", "d", "--levels", "1,2,"}), {"--levels", "'1,2,'"});
  check_error(parse_error({"--data", "d", "--levels="}), {"--levels", "integer"});
  check_error(parse_error({"--data", "d", "--seed", "18446744073709551616"}), {"--seed", "18446744073709551616"});
  check_error(parse_error({"--data", "d", "--big", "9223372036854775808"}), {"--big", "9223372036854775808"});
  check_error(parse_error({"--data", "d", "--verbose=yes"}), {"--verbose", "takes no value"});
  check_error(parse_error({"--data", "d", "--check", "yes"}), {"--check", "'yes'", "true or false"});
  check_error(parse_error({"--data", "d", "--check"}), {"--check", "needs a value"});
  check_error(parse_error({"--steps", "5"}), {"missing required option", "--data"});
  check_error(parse_error({}), {"missing required option", "--data"});
}

TEST_CASE("cli/args: --help returns false and lists every option with its default") {
  for (const char* flag : {"--help", "-h"}) {
    CAPTURE(std::string(flag));
    Args a("tinyds test", "Testing the parser.");
    Opts o;
    o.add_to(a);
    Argv v({"--steps", "7", flag, "--no-such-option"});  // --help stops parsing: later errors do not matter
    // parse() prints the help to stdout: capture it in a temporary file to check it is the help text.
    std::FILE* cap = std::tmpfile();
    REQUIRE(cap != nullptr);
    std::fflush(stdout);
    int saved = ::dup(1);
    ::dup2(::fileno(cap), 1);
    bool go_on = a.parse(v.argc(), v.argv());
    std::fflush(stdout);
    ::dup2(saved, 1);
    ::close(saved);
    std::rewind(cap);
    std::string printed;
    for (int ch; (ch = std::fgetc(cap)) != EOF;) printed += static_cast<char>(ch);
    std::fclose(cap);
    CHECK_FALSE(go_on);
    CHECK(printed == a.help());
  }
  Args a("tinyds test", "Testing the parser.");
  Opts o;
  o.add_to(a);
  std::string h = a.help();
  CHECK(h.find("tinyds test") != std::string::npos);
  CHECK(h.find("Testing the parser.") != std::string::npos);
  // Each option's line carries its name, help text and default.
  struct Line { const char* name; const char* help; const char* def; };
  for (Line l : {Line{"--steps", "optimizer steps", "100"}, Line{"--big", "a 64-bit integer", "-5"},
                 Line{"--seed", "random seed", "1337"}, Line{"--lr", "learning rate", "0.003"},
                 Line{"--beta", "KL coefficient", "0.5"}, Line{"--out", "output directory", "runs/x"},
                 Line{"--levels", "difficulty levels", "1,2"}, Line{"--verbose", "print more", "off"},
                 Line{"--check", "check the steps", "true"},
                 Line{"--data", "input JSONL file", "(required)"}}) {
    CAPTURE(std::string(l.name));
    std::size_t at = h.find("  " + std::string(l.name) + " ");
    REQUIRE_MESSAGE(at != std::string::npos, h);
    std::string line = h.substr(at, h.find('\n', at) - at);
    CHECK_MESSAGE(line.find(l.help) != std::string::npos, line);
    CHECK_MESSAGE(line.find(std::string("default: ") + l.def) != std::string::npos, line);
  }
  // Every help text starts in the same column, --help's own line included.
  std::size_t col = h.find("optimizer steps") - h.rfind('\n', h.find("optimizer steps")) - 1;
  std::size_t help_at = h.find("print this help");
  REQUIRE(help_at != std::string::npos);
  CHECK(help_at - h.rfind('\n', help_at) - 1 == col);
  CHECK(h.find("  --help ") != std::string::npos);
}

TEST_CASE("cli/args: an option registered twice is an error, and remove() drops one so a command can re-register it") {
  {
    Args a("tinyds test", "Testing.");
    Opts o;
    o.add_to(a);
    int other = 3;
    std::string msg;
    try {
      a.add("--steps", other, "a second --steps");
    } catch (const tinyds::Error& e) {
      msg = e.what();
    }
    check_error(msg, {"tinyds test", "--steps", "registered twice"});
    // The first registration is untouched.
    Argv v({"--data", "d", "--steps", "9"});
    REQUIRE(a.parse(v.argc(), v.argv()));
    CHECK(o.steps == 9);
    CHECK(other == 3);
  }
  {
    Args a("tinyds test", "Testing.");
    Opts o;
    o.add_to(a);
    a.remove("--steps");
    CHECK(a.help().find("--steps") == std::string::npos);
    int mine = 1;
    a.add("--steps", mine, "this command's own step count");
    Argv v({"--data", "d", "--steps", "4"});
    REQUIRE(a.parse(v.argc(), v.argv()));
    CHECK(mine == 4);
    CHECK(o.steps == 100);  // the removed binding is not written
    std::string h = a.help();
    CHECK(h.find("--steps") == h.rfind("--steps"));  // listed once
    std::string msg;
    try {
      a.remove("--nope");
    } catch (const tinyds::Error& e) {
      msg = e.what();
    }
    check_error(msg, {"--nope", "not registered"});
  }
}
