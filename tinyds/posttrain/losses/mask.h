// tinyds/posttrain/losses/mask.h — completion-mask helpers shared by the losses (internal to tinyds/posttrain).
//
// A mask m (B, T) or (N) holds 1 for a completion token that counts and 0 for a prompt or padding position.
// Only 0 and 1 are accepted: a soft weight would silently change every "masked mean" below.
#pragma once
#include <algorithm>

#include "tinyds/core/error.h"

namespace tinyds::detail {

// Throws unless every m[i] is exactly 0 or 1; names the caller, the field and the first bad position.
template <typename real>
void check_mask(const real* m, long n, const char* where, const char* field) {
  for (long i = 0; i < n; i++)
    if (m[i] != real(0) && m[i] != real(1))
      throw_error(where, ": ", field, "[", i, "] = ", m[i], " must be 0 or 1");
}

// sum_i m[i] (the number of counted tokens), in double.
template <typename real>
double mask_count(const real* m, long n) {
  double c = 0.0;
  for (long i = 0; i < n; i++) c += static_cast<double>(m[i]);
  return c;
}

// The denominator of a masked mean: the token count, clamped to >= 1 so that an all-masked batch gives loss 0 and
// gradient 0 instead of 0/0 (trl clamps the same way).
inline double mean_denominator(double count) { return std::max(count, 1.0); }

}  // namespace tinyds::detail
