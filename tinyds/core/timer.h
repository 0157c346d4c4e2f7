// tinyds/core/timer.h — wall-clock timing for progress lines and benchmarks.
#pragma once
#include <chrono>

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

}  // namespace tinyds
