// tinyds/core/parallel_error.h — carrying an exception out of an OpenMP parallel region.
//
// An exception that leaves an OpenMP region (or a thread of it) calls std::terminate: the process dies with
// "terminate called ..." and exit status 134, and no error message of tinyds is ever printed. So code in a
// region that can throw (a not-finite check in a forward, an allocation) runs through FirstError::run, which
// keeps the first exception; after the region, rethrow() raises it on the calling thread as if the loop had
// been sequential (the other iterations still run; their results are discarded with the exception).
//
//   FirstError failure;
//   #pragma omp parallel for
//   for (int r = 0; r < R; r++) failure.run([&] { work(r); });
//   failure.rethrow();
//
// A region whose threads first allocate scratch and then share a loop (`#pragma omp for`) must still send every
// thread through the loop (it ends in a barrier all threads reach), so a thread whose scratch failed skips its
// iterations instead of leaving:
//
//   #pragma omp parallel
//   {
//     std::vector<double> scratch;
//     const bool ready = failure.run([&] { scratch.resize(V); });
//   #pragma omp for
//     for (int n = 0; n < N; n++) {
//       if (!ready) continue;  // the error is rethrown after the region; these rows are never read
//       ...
//     }
//   }
//   failure.rethrow();
#pragma once
#include <exception>

namespace tinyds {

class FirstError {
 public:
  // Runs f; true if it returned, false if it threw (the exception is kept unless an earlier one was).
  template <typename F>
  bool run(F&& f) noexcept {
    try {
      f();
      return true;
    } catch (...) {
      // One thread at a time records; later exceptions are dropped (the first is the one a user can act on).
#pragma omp critical(tinyds_first_error)
      if (!error_) error_ = std::current_exception();
      return false;
    }
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
};

}  // namespace tinyds
