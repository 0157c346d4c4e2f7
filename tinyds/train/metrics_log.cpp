// tinyds/train/metrics_log.cpp — see metrics_log.h.
#include "tinyds/train/metrics_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tinyds/core/error.h"

namespace tinyds {

namespace {

// Writes all of `s` to fd (write(2) may write less than asked, or be interrupted by a signal).
void write_all(int fd, const std::string& s, const std::string& path) {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw_error(path, ": writing metrics failed after ", done, " of ", s.size(), " bytes of a record: ",
                  n < 0 ? std::strerror(errno) : "no progress", " (disk full, or a file-size limit: ulimit -f)");
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

std::string metrics_cut_back(const std::string& text, int step) {
  std::istringstream in(text);
  std::string line, kept;
  while (std::getline(in, line)) {
    // A record is one JSON object with an integer "step"; anything else is the remnant of a cut write.
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) continue;
    if (j["step"].get<long long>() > step) continue;
    kept += line + "\n";
  }
  return kept;
}

MetricsLog::MetricsLog(std::string path, int resume_step) : path_(std::move(path)) {
  if (resume_step >= 0) {
    std::ifstream in(path_, std::ios::binary);
    if (in) {
      std::ostringstream all;
      all << in.rdbuf();
      // Rewritten through a temporary file and renamed: a kill now leaves either the old or the cut log.
      const std::string tmp = path_ + ".tmp";
      const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0) throw_error(tmp, ": cannot create: ", std::strerror(errno));
      try {
        write_all(fd, metrics_cut_back(all.str(), resume_step), tmp);
      } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
      }
      if (::fsync(fd) != 0 || ::close(fd) != 0 || std::rename(tmp.c_str(), path_.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw_error(path_, ": cannot replace it with the log cut back to step ", resume_step, ": ", std::strerror(err));
      }
    }
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | (resume_step >= 0 ? 0 : O_TRUNC), 0644);
  if (fd_ < 0) throw_error(path_, ": cannot open for writing: ", std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsLog::write(const nlohmann::json& record) { write_all(fd_, record.dump() + "\n", path_); }

void MetricsLog::sync() {
  // EINVAL: a file that cannot be synced (a pipe, /dev/null): nothing to make durable.
  if (::fsync(fd_) != 0 && errno != EINVAL) throw_error(path_, ": fsync failed: ", std::strerror(errno));
}

}  // namespace tinyds
