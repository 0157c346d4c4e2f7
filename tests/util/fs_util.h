// tests/fs_util.h — a fresh temporary folder per test (header only).
#pragma once
#include <filesystem>
#include <string>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace tinyds::test {

// Folders handed out by temp_dir, removed (with their contents) when the test process exits normally; a failing
// run that aborts leaves them for inspection.
struct TempDirRegistry {
  std::vector<std::filesystem::path> paths;
  ~TempDirRegistry() {
    std::error_code ec;  // best effort: never throw from a destructor at exit
    for (const auto& p : paths) std::filesystem::remove_all(p, ec);
  }
  static TempDirRegistry& get() {
    static TempDirRegistry r;
    return r;
  }
};

// <tmp>/tinyds_test_<name>_<pid>, emptied and created: tests running in parallel (different pids) never share one.
inline std::string temp_dir(const std::string& name) {
  namespace fs = std::filesystem;
  fs::path p = fs::temp_directory_path() / ("tinyds_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  TempDirRegistry::get().paths.push_back(p);
  return p.string();
}

}  // namespace tinyds::test
