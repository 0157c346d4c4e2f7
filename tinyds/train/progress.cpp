// tinyds/train/progress.cpp — see progress.h.
#include "tinyds/train/progress.h"

#include <algorithm>
#include <cstdio>

namespace tinyds {

Progress::Progress(std::string label, int total, int start, bool quiet, int every)
    : label_(std::move(label)), total_(total), start_(start), every_(every), quiet_(quiet) {
  if (every_ <= 0) every_ = std::max(1, (total_ - start_) / 40);
}

void Progress::step_done(int step, double loss, double lr, double grad_norm, long tokens, const std::string& extra) {
  interval_tokens_ += tokens;
  if (step % every_ != 0 && step != total_) return;
  double dt = interval_.seconds();
  last_tps_ = dt > 0 ? interval_tokens_ / dt : 0;
  tps_.push_back(last_tps_);
  interval_tokens_ = 0;
  interval_.reset();
  if (quiet_) return;
  double elapsed = timer_.seconds();
  double eta = step > start_ ? elapsed / (step - start_) * (total_ - step) : 0;
  std::printf("[%s] step %5d/%d | loss %.4f%s%s | lr %.2e | grad norm %.3f | %.1fK tok/s | elapsed %s | ETA %s\n",
              label_.c_str(), step, total_, loss, extra.empty() ? "" : " | ", extra.c_str(), lr, grad_norm,
              last_tps_ / 1000, format_duration(elapsed).c_str(),
              format_duration(eta).c_str());
  std::fflush(stdout);
}

double Progress::median_tokens_per_s() const {
  if (tps_.empty()) return 0;
  std::vector<double> v = tps_;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

std::string format_duration(double s) {
  char buf[32];
  long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

}  // namespace tinyds
