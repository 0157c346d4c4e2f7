// tinyds/posttrain/losses/stable.h — overflow-free sigmoid and softplus (internal to tinyds/posttrain).
#pragma once
#include <algorithm>
#include <cmath>

namespace tinyds::detail {

// sigmoid(x) = 1 / (1 + exp(-x)), evaluated so that exp only sees non-positive arguments (no overflow to inf).
inline double sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)); equals -log sigmoid(-x).
inline double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }

}  // namespace tinyds::detail
