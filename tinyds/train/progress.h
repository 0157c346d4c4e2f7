// tinyds/train/progress.h — the progress line of long runs: step, loss, lr, grad norm, tokens/s, ETA.
#pragma once
#include <string>
#include <vector>

#include "tinyds/core/timer.h"

namespace tinyds {

class Progress {
 public:
  // total: the step count the run ends at; start: the step it starts from (non-zero when resuming).
  Progress(std::string label, int total, int start, bool quiet, int every = 0);
  // Call after each step; prints a line every `every` steps (default: ~40 lines per run) and at the end.
  // extra: more fields for the line (e.g. "mtp 1.23 | maxvio 0.41"), printed after the loss.
  void step_done(int step, double loss, double lr, double grad_norm, long tokens, const std::string& extra = "");
  double tokens_per_s() const { return last_tps_; }
  double median_tokens_per_s() const;

 private:
  std::string label_;
  int total_, start_, every_;
  bool quiet_;
  Timer timer_, interval_;
  long interval_tokens_ = 0;
  double last_tps_ = 0;
  std::vector<double> tps_;
};

// "1h02m", "3m12s", "45s"
std::string format_duration(double seconds);

}  // namespace tinyds
