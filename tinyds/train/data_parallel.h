// tinyds/train/data_parallel.h — data-parallel training across CPU threads: R model replicas, one per thread.
//
// The model is small (C 128 in the demo), so splitting each GEMM across two threads (what the ops do on their own
// with OpenMP) leaves the second core waiting at every op's barrier: on the 2-core machine a `small` step ran
// 1.44x faster with 2 threads than with 1. Data parallelism splits the BATCH instead, as multi-GPU training does:
//
//   rows 0..B-1 of the batch                  (B, T) tokens and targets
//     -> replica r gets rows [B r / R, B (r+1) / R)           every replica holds the same parameters
//     -> each replica: zero_grad, forward, backward on its rows, single-threaded (its thread is one of the OpenMP
//        team; the ops' own parallel regions are nested, so they run on that one thread)
//     -> grads(primary) = sum_r grads(replica r)   (replica 0 is the primary model itself)
//   the optimizer then updates the primary; sync() copies its parameters and router biases to the other replicas.
//
// The sum is the gradient of the WHOLE batch's objective because each replica normalises its losses by the whole
// batch's target counts (Transformer::set_loss_denominators): main = sum_r S_r / N, MTP module k = lambda/D
// sum_r S_rk / N_k, where S are summed cross-entropies and N the batch's unmasked targets. Only float rounding
// differs from one model on the whole batch (tests/train/data_parallel_test.cpp checks it to 1e-12 in double).
// The MoE loads of the replicas are added before the bias update and MaxVio, so both see the whole batch.
// The balance LOSSES (seqaux, aux) are averaged inside one forward and do not split this way: with them on, and
// with R = 1, there is one replica and every call goes straight to the model.
#pragma once
#include <memory>
#include <vector>

#include "tinyds/model/transformer.h"

namespace tinyds {

// How many replicas `requested` (0 = auto: one per OpenMP thread) gives for batch size B and this model config:
// at most B, and 1 when a balance loss is on.
int data_parallel_replicas(int requested, int B, const ModelConfig& m);

template <typename real>
class DataParallel {
 public:
  // primary: the model the optimizer updates (replica 0). replicas >= 1 (see data_parallel_replicas).
  DataParallel(Transformer<real>& primary, int replicas);

  int replicas() const { return static_cast<int>(others_.size()) + 1; }

  // zero_grad + forward + backward of the whole batch (B, T): leaves d(objective)/d(params) in primary.grads().
  // Returns the objective (main + MTP + balance loss).
  double forward_backward(const int* tokens, const int* targets, int B, int T);
  double main_loss() const { return main_loss_; }   // of the last forward_backward, whole batch
  double mtp_loss() const { return mtp_loss_; }
  double balance_loss() const { return balance_loss_; }
  std::vector<std::vector<int>> moe_load() const;  // per MoE layer that ran: (E) routed pairs, summed over replicas
  std::vector<double> moe_maxvio() const;          // per MoE layer: from the summed loads
  // After the optimizer step: the bias update from the summed loads (balance "bias"), then sync().
  void update_moe_bias();
  // Copy the primary's parameters and router biases to the other replicas (after any change to them).
  void sync();

 private:
  Transformer<real>& primary_;
  std::vector<std::unique_ptr<Transformer<real>>> others_;
  double main_loss_ = 0, mtp_loss_ = 0, balance_loss_ = 0;
  Transformer<real>& replica(int r) { return r == 0 ? primary_ : *others_[r - 1]; }
  const Transformer<real>& replica(int r) const { return r == 0 ? primary_ : *others_[r - 1]; }
};

extern template class DataParallel<float>;
extern template class DataParallel<double>;

}  // namespace tinyds
