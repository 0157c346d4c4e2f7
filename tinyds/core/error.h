// tinyds/core/error.h — one exception type for every user-facing error.
//
// Errors say what was wrong, where (file, line, field, position) and, where it helps, what to do.
// The CLI catches tinyds::Error, prints "tinyds: <message>" and exits with status 1.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace tinyds {

struct Error : std::runtime_error {
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// Builds a message from any streamable pieces: throw_error("file ", path, ":", line, ": bad field");
template <typename... Args>
[[noreturn]] void throw_error(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(os.str());
}

}  // namespace tinyds

// Internal invariant (a bug in tinyds, not bad input): names the file and line of the check.
#define TINYDS_ASSERT(cond, ...)                                                              \
  do {                                                                                        \
    if (!(cond))                                                                              \
      ::tinyds::throw_error(__FILE__, ":", __LINE__, ": internal check failed: " #cond " ",   \
                            ##__VA_ARGS__);                                                   \
  } while (0)
