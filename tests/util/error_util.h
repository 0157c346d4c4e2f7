// tests/error_util.h — small helpers for tests of error messages.
#pragma once
#include <string>

#include "tinyds/core/error.h"

namespace tinyds_test {

// The message of the tinyds::Error that f() throws, or "<no error>" if it throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const tinyds::Error& e) {
    return e.what();
  }
  return "<no error>";
}

inline bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace tinyds_test
