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
#pragma once
#include <exception>

namespace tinyds {

class FirstError {
 public:
  template <typename F>
  void run(F&& f) noexcept {
    try {
      f();
    } catch (...) {
      // One thread at a time records; later exceptions are dropped (the first is the one a user can act on).
#pragma omp critical(tinyds_first_error)
      if (!error_) error_ = std::current_exception();
    }
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
};

}  // namespace tinyds
