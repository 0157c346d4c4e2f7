// tinyds/posttrain/losses/sft.cpp — masked mean of -lp (see sft.h).
//
// Shapes: n token positions.  L = -sum m lp / max(sum m, 1).  Gradients: dlp WRITTEN (=).
#include "tinyds/posttrain/losses/sft.h"

#include "tinyds/posttrain/losses/mask.h"

namespace tinyds {

template <typename real>
double sft_loss_forward(const real* lp,    // (n)
                        const real* mask,  // (n) 1 = completion token
                        long n) {
  if (n < 0) throw_error("sft_loss_forward: n = ", n, " must be >= 0");
  detail::check_mask(mask, n, "sft_loss_forward", "mask");
  double s = 0.0;
  for (long i = 0; i < n; i++) s += static_cast<double>(mask[i]) * static_cast<double>(lp[i]);
  return -s / detail::mean_denominator(detail::mask_count(mask, n));
}

// forward was: L = -sum_i m[i] lp[i] / max(sum m, 1)   =>   dL/dlp[i] = -m[i] / max(sum m, 1)
template <typename real>
void sft_loss_backward(real* dlp,         // (n) written
                       double dloss,      // dL_total / dL
                       const real* mask,  // (n)
                       long n) {
  if (n < 0) throw_error("sft_loss_backward: n = ", n, " must be >= 0");
  detail::check_mask(mask, n, "sft_loss_backward", "mask");
  const double g = -dloss / detail::mean_denominator(detail::mask_count(mask, n));
  for (long i = 0; i < n; i++) dlp[i] = static_cast<real>(g * static_cast<double>(mask[i]));
}

template double sft_loss_forward<float>(const float*, const float*, long);
template double sft_loss_forward<double>(const double*, const double*, long);
template void sft_loss_backward<float>(float*, double, const float*, long);
template void sft_loss_backward<double>(double*, double, const double*, long);

}  // namespace tinyds
