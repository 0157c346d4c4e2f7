// tests/train/metrics_log_test.cpp — metrics.jsonl is cut back to the checkpoint's step on resume (no duplicated
// step, no torn line), and a failed write (disk full, file-size limit) is an error naming the file.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/util/error_util.h"
#include "tests/util/fs_util.h"
#include "tinyds/train/metrics_log.h"

using namespace tinyds;
using tinyds::test::temp_dir;
using tinyds_test::error_of;
using tinyds_test::has;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("train/metrics_log: cutting back keeps whole records up to the step and drops a torn line") {
  // What a run killed after step 5 (checkpoint at step 4) leaves: steps 1-5, an eval line at 4, a cut write.
  const std::string text =
      "{\"step\":1,\"loss\":3.0}\n{\"step\":2,\"loss\":2.5}\n{\"step\":3,\"loss\":2.0}\n{\"step\":4,\"loss\":1.5}\n"
      "{\"step\":4,\"eval_level\":1}\n{\"step\":5,\"loss\":1.2}\n{\"step\":6,\"lo";
  CHECK(metrics_cut_back(text, 4) ==
        "{\"step\":1,\"loss\":3.0}\n{\"step\":2,\"loss\":2.5}\n{\"step\":3,\"loss\":2.0}\n{\"step\":4,\"loss\":1.5}\n"
        "{\"step\":4,\"eval_level\":1}\n");
  CHECK(metrics_cut_back(text, 0).empty());
  // A torn line in the middle (an older kill, then appended to) is dropped as well.
  CHECK(metrics_cut_back("{\"step\":1}\n{\"st{\"step\":2}\n{\"step\":3}\n", 9) == "{\"step\":1}\n{\"step\":3}\n");
}

TEST_CASE("train/metrics_log: a resumed log continues after the checkpoint's step, a fresh one starts empty") {
  const std::string dir = temp_dir("metrics_resume");
  const std::string path = dir + "/metrics.jsonl";
  {
    MetricsLog log(path, -1);
    for (int s = 1; s <= 6; s++) log.write({{"step", s}});
  }
  {
    std::ofstream torn(path, std::ios::app);
    torn << "{\"step\":7,";  // a write cut short by SIGKILL
  }
  {
    MetricsLog log(path, 4);  // resumed from the step-4 checkpoint
    log.write({{"step", 5}});
    log.sync();
  }
  CHECK(slurp(path) == "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n{\"step\":4}\n{\"step\":5}\n");
  {
    MetricsLog fresh(path, -1);
  }
  CHECK(slurp(path).empty());
}

TEST_CASE("train/metrics_log: disk full is an error naming the file") {
  MetricsLog log("/dev/full", -1);  // every write fails with ENOSPC
  const std::string msg = error_of([&] { log.write({{"step", 1}}); });
  CHECK_MESSAGE(has(msg, "/dev/full"), msg);
  CHECK_MESSAGE(has(msg, "No space left"), msg);
}

TEST_CASE("train/metrics_log: the file-size limit is an error naming the file, not a silent cut") {
  const std::string dir = temp_dir("metrics_fsize");
  const std::string path = dir + "/metrics.jsonl";
  // As main() does: without this, passing RLIMIT_FSIZE kills the process by SIGXFSZ.
  void (*old_handler)(int) = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
  rlimit small = old;
  small.rlim_cur = 1000;  // bytes; the hard limit is unchanged, so the old soft limit can be restored
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string msg;
  {
    MetricsLog log(path, -1);
    msg = error_of([&] {
      for (int s = 1; s <= 1000; s++) log.write({{"step", s}, {"loss", 1.0}});  // ~25 bytes a line: 25 kB
    });
  }
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  CHECK_MESSAGE(has(msg, path), msg);
  CHECK_MESSAGE(has(msg, "File too large"), msg);
}
