// tinyds/cli/args.h — a small declarative option parser shared by every subcommand.
//
//   Args a("tinyds data", "Generate GSM8K-style problems as JSONL.");
//   int level = 1;  a.add("--level", level, "difficulty level 1-4");
//   std::string out; a.add_required("--out", out, "output file");
//   if (!a.parse(argc, argv)) return 0;      // --help printed
// Every option is listed by --help with its default. An unknown option, a missing value or a bad value is
// a tinyds::Error naming the option and the value.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tinyds {

class Args {
 public:
  Args(std::string program, std::string summary) : program_(std::move(program)), summary_(std::move(summary)) {}

  void add(const std::string& name, int& v, const std::string& help);
  void add(const std::string& name, int64_t& v, const std::string& help);
  void add(const std::string& name, uint64_t& v, const std::string& help);
  void add(const std::string& name, float& v, const std::string& help);
  void add(const std::string& name, double& v, const std::string& help);
  void add(const std::string& name, std::string& v, const std::string& help);
  void add(const std::string& name, std::vector<int>& v, const std::string& help);  // comma list: 1,2,3
  void add(const std::string& name, bool& v, const std::string& help);              // true | false (on | off, 1 | 0)
  void add_flag(const std::string& name, bool& v, const std::string& help);          // no value
  void add_required(const std::string& name, std::string& v, const std::string& help);
  // Drops an option a shared helper registered (ConfigOptions) that this command does not use; registering a
  // name twice is an error.
  void remove(const std::string& name);
  // Parses argv[1..argc) (argv[0] is the subcommand name). Returns false if --help was printed.
  bool parse(int argc, char** argv);
  // True if the option was given on the command line (to let it override a preset).
  bool given(const std::string& name) const;
  // The options given on the command line, in registration order.
  std::vector<std::string> given_options() const;
  std::string help() const;

 private:
  struct Opt {
    std::string name, help, def, type;
    bool flag = false, required = false, seen = false;
    std::function<void(const std::string&)> set;
  };
  void add_opt(Opt o);
  std::string program_, summary_;
  std::vector<Opt> opts_;
};

}  // namespace tinyds
