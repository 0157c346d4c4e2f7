// tinyds/train/metrics_log.h — metrics.jsonl: one JSON object per line, each with its "step".
//
// Every record is written with one write(2) as soon as it is made (no user-space buffer), so a killed run
// loses nothing it had logged, and sync() (fsync) runs with each checkpoint, so the file on disk is at least
// as far as the checkpoint. A resumed run starts from a checkpoint that may be older than the last line
// (the run was killed between two checkpoints): the log is cut back to that checkpoint's step first —
// lines with a larger "step" are dropped, as is a line that is not one whole JSON object (a write cut
// short by the kill) — so each step appears once. A failed write (disk full; the file-size limit of
// `ulimit -f`, which main() turns from the signal SIGXFSZ into the error EFBIG) is an error naming the file.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace tinyds {

class MetricsLog {
 public:
  // A fresh run (resume_step < 0) starts an empty file; a resumed one keeps the lines up to resume_step.
  MetricsLog(std::string path, int resume_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const nlohmann::json& record);  // one line
  void sync();                               // to disk (with each checkpoint)
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// The lines of a metrics.jsonl text to keep when resuming at `step`: whole JSON objects with "step" <= step.
std::string metrics_cut_back(const std::string& text, int step);

}  // namespace tinyds
