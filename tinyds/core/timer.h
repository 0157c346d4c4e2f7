// tinyds/core/timer.h — wall-clock timing for progress lines and benchmarks.
#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace tinyds {

class Timer {
 public:
  Timer() : t0_(clock::now()) {}
  void reset() { t0_ = clock::now(); }
  double seconds() const { return std::chrono::duration<double>(clock::now() - t0_).count(); }

 private:
  using clock = std::chrono::steady_clock;
  clock::time_point t0_;
};

// Seconds spent per named phase (e.g. "moe fwd"), accumulated over calls: the bench's profile of a real step.
struct PhaseTimes {
  std::vector<std::pair<std::string, double>> seconds;  // in first-seen order
  // Called at both ends of every phase when set. On cuda a launch returns before its kernel has run, so a host
  // timer around a phase measures launches, not work: the bench's profiling mode sets this to cuda::synchronize
  // (tinyds/train/bench.h), which makes each phase's time its kernels' time (and costs the overlap between phases).
  void (*sync)() = nullptr;
  void add(const char* name, double s) {
    for (auto& [n, t] : seconds)
      if (n == name) { t += s; return; }
    seconds.emplace_back(name, s);
  }
};

// Adds the time from construction to destruction to `into` under `name`; does nothing when `into` is nullptr.
class ScopedPhase {
 public:
  ScopedPhase(PhaseTimes* into, const char* name) : into_(into), name_(name) {
    if (into_ && into_->sync) {  // the work launched before this phase is not its time
      into_->sync();
      timer_.reset();
    }
  }
  ~ScopedPhase() {
    if (!into_) return;
    if (into_->sync) into_->sync();  // this phase's kernels have finished
    into_->add(name_, timer_.seconds());
  }
  ScopedPhase(const ScopedPhase&) = delete;
  ScopedPhase& operator=(const ScopedPhase&) = delete;

 private:
  PhaseTimes* into_;
  const char* name_;
  Timer timer_;
};

}  // namespace tinyds
