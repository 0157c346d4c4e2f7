// tinyds/cli/args.cpp — see args.h.
#include "tinyds/cli/args.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "tinyds/core/error.h"

namespace tinyds {

namespace {

[[noreturn]] void bad_value(const std::string& name, const std::string& value, const char* expected) {
  throw_error("option ", name, ": '", value, "' is not ", expected);
}

long long parse_ll(const std::string& name, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE) bad_value(name, s, "an integer");
  return v;
}

// strtoull would silently wrap "-1" to 2^64-1, so a sign is rejected before parsing.
unsigned long long parse_ull(const std::string& name, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  std::size_t first = s.find_first_not_of(" \t");
  if (first != std::string::npos && s[first] == '-') bad_value(name, s, "a non-negative integer");
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE) bad_value(name, s, "a non-negative 64-bit integer");
  return v;
}

double parse_d(const std::string& name, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) bad_value(name, s, "a finite number");
  return v;
}

std::string to_str(double v) { std::ostringstream os; os << v; return os.str(); }

}  // namespace

// Two options of one name would make --help list both and the last one silently win: a programming error,
// reported the first time the command runs (every command's --help runs in tests/cli_test.sh).
void Args::add_opt(Opt o) {
  for (const Opt& x : opts_)
    if (x.name == o.name) throw_error(program_, ": option ", o.name, " is registered twice");
  opts_.push_back(std::move(o));
}

void Args::remove(const std::string& name) {
  for (auto it = opts_.begin(); it != opts_.end(); ++it)
    if (it->name == name) { opts_.erase(it); return; }
  throw_error(program_, ": cannot remove option ", name, ": it is not registered");
}

void Args::add(const std::string& name, int& v, const std::string& help) {
  add_opt({name, help, std::to_string(v), "INT", false, false, false, [&v, name](const std::string& s) {
             long long x = parse_ll(name, s);
             if (x < INT32_MIN || x > INT32_MAX) bad_value(name, s, "an integer in 32-bit range");
             v = static_cast<int>(x);
           }});
}
void Args::add(const std::string& name, int64_t& v, const std::string& help) {
  add_opt({name, help, std::to_string(v), "INT", false, false, false,
           [&v, name](const std::string& s) { v = parse_ll(name, s); }});
}
void Args::add(const std::string& name, uint64_t& v, const std::string& help) {
  add_opt({name, help, std::to_string(v), "INT", false, false, false,
           [&v, name](const std::string& s) { v = parse_ull(name, s); }});
}
void Args::add(const std::string& name, float& v, const std::string& help) {
  add_opt({name, help, to_str(v), "NUM", false, false, false,
           [&v, name](const std::string& s) {
             // 1e39 is a finite double but overflows float to inf: refuse it here, not as a NaN loss later.
             const double d = parse_d(name, s);
             if (!std::isfinite(static_cast<float>(d))) bad_value(name, s, "a number in float range (|x| < 3.4e38)");
             v = static_cast<float>(d);
           }});
}
void Args::add(const std::string& name, double& v, const std::string& help) {
  add_opt({name, help, to_str(v), "NUM", false, false, false,
           [&v, name](const std::string& s) { v = parse_d(name, s); }});
}
void Args::add(const std::string& name, std::string& v, const std::string& help) {
  add_opt({name, help, v.empty() ? "\"\"" : v, "STR", false, false, false,
           [&v](const std::string& s) { v = s; }});
}
void Args::add(const std::string& name, std::vector<int>& v, const std::string& help) {
  std::string def;
  for (size_t i = 0; i < v.size(); i++) def += (i ? "," : "") + std::to_string(v[i]);
  add_opt({name, help, def, "LIST", false, false, false, [&v, name](const std::string& s) {
             v.clear();
             std::stringstream ss(s);
             std::string item;
             while (std::getline(ss, item, ',')) v.push_back(static_cast<int>(parse_ll(name, item)));
             // getline drops a trailing empty item, so "1,2," would otherwise pass as "1,2".
             if (v.empty() || s.back() == ',') bad_value(name, s, "a comma-separated list of integers");
           }});
}
void Args::add(const std::string& name, bool& v, const std::string& help) {
  add_opt({name, help, v ? "true" : "false", "BOOL", false, false, false, [&v, name](const std::string& s) {
             if (s == "true" || s == "on" || s == "1") v = true;
             else if (s == "false" || s == "off" || s == "0") v = false;
             else bad_value(name, s, "true or false");
           }});
}
void Args::add_flag(const std::string& name, bool& v, const std::string& help) {
  add_opt({name, help, v ? "on" : "off", "", true, false, false, [&v](const std::string&) { v = true; }});
}
void Args::add_required(const std::string& name, std::string& v, const std::string& help) {
  add_opt({name, help, "(required)", "STR", false, true, false, [&v](const std::string& s) { v = s; }});
}

bool Args::given(const std::string& name) const {
  for (const Opt& o : opts_)
    if (o.name == name) return o.seen;
  return false;
}

std::vector<std::string> Args::given_options() const {
  std::vector<std::string> names;
  for (const Opt& o : opts_)
    if (o.seen) names.push_back(o.name);
  return names;
}

bool Args::parse(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") { std::fputs(help().c_str(), stdout); return false; }
    std::string value;
    bool has_inline = false;
    size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) { value = a.substr(eq + 1); a = a.substr(0, eq); has_inline = true; }
    Opt* opt = nullptr;
    for (Opt& o : opts_)
      if (o.name == a) opt = &o;
    if (!opt) throw_error(program_, ": unknown option '", a, "' (see ", program_, " --help)");
    if (opt->flag) {
      if (has_inline) throw_error(program_, ": option ", a, " takes no value");
      opt->set("");
    } else {
      if (!has_inline) {
        if (i + 1 >= argc) throw_error(program_, ": option ", a, " needs a value (", opt->type, ")");
        value = argv[++i];
      }
      opt->set(value);
    }
    opt->seen = true;
  }
  for (const Opt& o : opts_)
    if (o.required && !o.seen) throw_error(program_, ": missing required option ", o.name, " (see ", program_, " --help)");
  return true;
}

std::string Args::help() const {
  std::ostringstream os;
  os << "usage: " << program_ << " [options]\n\n" << summary_ << "\n\noptions:\n";
  char buf[64];
  for (const Opt& o : opts_) {
    std::string lhs = "  " + o.name + (o.type.empty() ? "" : " " + o.type);
    std::snprintf(buf, sizeof buf, "%-26s", lhs.c_str());
    os << buf << " " << o.help << " [default: " << o.def << "]\n";
  }
  std::snprintf(buf, sizeof buf, "%-26s", "  --help");  // same column as the options above
  os << buf << " print this help\n";
  return os.str();
}

}  // namespace tinyds
