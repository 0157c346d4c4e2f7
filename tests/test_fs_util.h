// tests/test_fs_util.h — a fresh temporary folder per test (header only).
#pragma once
#include <filesystem>
#include <string>
#include <unistd.h>

namespace tinyds::test {

// <tmp>/tinyds_test_<name>_<pid>, emptied and created: tests running in parallel (different pids) never share one.
inline std::string temp_dir(const std::string& name) {
  namespace fs = std::filesystem;
  fs::path p = fs::temp_directory_path() / ("tinyds_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace tinyds::test
