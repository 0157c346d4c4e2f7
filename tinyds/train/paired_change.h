// tinyds/train/paired_change.h — is a change in held-out exact match between two checkpoints more than noise? Both
// are evaluated on the same problems, so the comparison is paired (McNemar 1947): only the problems one gets right
// and the other wrong carry information, and the problems both get right (or both wrong) cancel.
//
// Shapes: n problems; a_right (n), b_right (n): 1 where checkpoint A (B) answered problem i right.
//
//   only_a = #{i: A right, B wrong},  only_b = #{i: B right, A wrong}         (the discordant problems)
//   change = (only_b - only_a) / n                                            (= accuracy(B) - accuracy(A))
//   se     = sqrt(only_a + only_b - (only_b - only_a)^2 / n) / n              (the standard error of the mean of the
//            per-problem differences d_i in {-1, 0, 1}: sqrt(Var(d) / n), Var with divisor n)
//   p      = min(1, 2 sum_{i=0..k} C(m, i) / 2^m),  m = only_a + only_b, k = min(only_a, only_b)
//            (McNemar's exact test, two-sided: under "no difference" each discordant problem is a fair coin)
//
// With 200 problems per level at ~95%, a handful of problems near the model's decision boundary flip under any small
// change of the weights; se and p say whether a 2-point change is one of those.
#pragma once
#include <optional>
#include <vector>

namespace tinyds {

struct PairedChange {
  int n = 0;
  int only_a = 0, only_b = 0;  // discordant problems: right under A only, under B only
  double change = 0;           // accuracy(B) - accuracy(A), a fraction
  double se = 0;               // its standard error (above)
  double p_value = 1;          // McNemar's exact two-sided p
};

// a_right and b_right must have the same, non-zero length (else tinyds::Error naming both lengths).
PairedChange paired_change(const std::vector<char>& a_right, const std::vector<char>& b_right);

// The same when both evaluations carry per-problem results of the same problems, else nothing (a table of levels
// prints the change without its standard error then).
std::optional<PairedChange> paired_change_if_comparable(const std::vector<char>& a_right,
                                                        const std::vector<char>& b_right);

}  // namespace tinyds
