// tinyds/train/data_parallel.cpp — see data_parallel.h.
//
// Shapes: tokens, targets (B, T) row-major; replica r runs rows [row0(r), row0(r+1)) as its own (B_r, T) batch.
#include "tinyds/train/data_parallel.h"

#include <algorithm>

#include "tinyds/core/error.h"
#include "tinyds/core/parallel_error.h"
#include "tinyds/ops/moe_balance.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tinyds {

int data_parallel_replicas(int requested, int B, const ModelConfig& m) {
  if (requested < 0) throw_error("data-parallel replicas = ", requested, ": must be >= 0 (0 = one per OpenMP thread)");
  const BalanceModes bm = parse_balance(m.balance);
  if (bm.seqaux || bm.aux) return 1;  // their losses are averaged inside one forward (data_parallel.h)
  int r = requested;
  if (r == 0) {
    r = 1;
#ifdef _OPENMP
    r = omp_get_max_threads();
#endif
  }
  return std::max(1, std::min(r, B));
}

template <typename real>
DataParallel<real>::DataParallel(Transformer<real>& primary, int replicas) : primary_(primary) {
  if (replicas < 1) throw_error("DataParallel: replicas = ", replicas, " must be >= 1");
  // The replicas are CPU threads that copy weights with the host's std::copy: a cuda model trains as one replica.
  if (replicas > 1 && primary.device() == Device::cuda)
    throw_error("DataParallel: ", replicas, " replicas of a cuda model; on cuda one model runs the whole batch");
  for (int r = 1; r < replicas; r++) others_.push_back(std::make_unique<Transformer<real>>(primary.config(), Role::policy));
  sync();
}

template <typename real>
void DataParallel<real>::sync() {
  const std::size_t n = primary_.num_params(), nb = primary_.moe_bias_size();
  for (auto& o : others_) {
    std::copy(primary_.params(), primary_.params() + n, o->params());
    std::copy(primary_.moe_bias(), primary_.moe_bias() + nb, o->moe_bias());
  }
}

template <typename real>
double DataParallel<real>::forward_backward(const int* tokens, const int* targets, int B, int T) {
  const int R = replicas();
  if (R == 1) {  // the model on its own, its ops threaded
    primary_.set_loss_denominators(0, {});
    primary_.zero_grad();
    const double objective = primary_.forward(tokens, targets, B, T);
    primary_.backward();
    main_loss_ = primary_.main_loss(); mtp_loss_ = primary_.mtp_loss(); balance_loss_ = primary_.balance_loss();
    return objective;
  }
  if (B < R) throw_error("DataParallel: batch of ", B, " rows for ", R, " replicas");
  // The whole batch's target counts: every replica divides its summed losses by these.
  int main_count = 0;
  for (long i = 0; i < static_cast<long>(B) * T; i++) main_count += targets[i] >= 0;
  std::vector<int> mtp_counts(primary_.config().mtp_depth);
  for (int k = 0; k < primary_.config().mtp_depth; k++) mtp_counts[k] = mtp_target_count(targets, B, T, k);
  auto row0 = [&](int r) { return static_cast<int>(static_cast<long>(B) * r / R); };

  std::vector<double> objective(R), main(R), mtp(R), balance(R);
  // One replica per thread; the ops' parallel regions inside are nested and run on that thread alone.
  // A forward can throw (a not-finite check, an allocation): the first exception is rethrown after the region.
  FirstError failure;
#pragma omp parallel for schedule(static, 1) num_threads(R)
  for (int r = 0; r < R; r++) {
    failure.run([&] {
      Transformer<real>& m = replica(r);
      const long off = static_cast<long>(row0(r)) * T;
      m.set_loss_denominators(main_count, mtp_counts);
      m.zero_grad();
      objective[r] = m.forward(tokens + off, targets + off, row0(r + 1) - row0(r), T);
      m.backward();
      main[r] = m.main_loss(); mtp[r] = m.mtp_loss(); balance[r] = m.balance_loss();
      m.set_loss_denominators(0, {});  // a later forward of this model (evaluation, a test) uses its own counts
    });
  }
  for (int r = 0; r < R; r++) replica(r).set_loss_denominators(0, {});  // also when a replica failed
  failure.rethrow();
  // grads(primary) += grads(replica r), r = 1..R-1 in order (the same sum for any thread count).
  real* g = primary_.grads();
  const long n = static_cast<long>(primary_.num_params());
  for (int r = 1; r < R; r++) {
    const real* gr = replica(r).grads();
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) g[i] += gr[i];
  }
  main_loss_ = mtp_loss_ = balance_loss_ = 0;
  double total = 0;
  for (int r = 0; r < R; r++) {
    total += objective[r]; main_loss_ += main[r]; mtp_loss_ += mtp[r]; balance_loss_ += balance[r];
  }
  return total;
}

template <typename real>
std::vector<std::vector<int>> DataParallel<real>::moe_load() const {
  std::vector<std::vector<int>> sum = primary_.moe_load();
  for (const auto& o : others_) {
    const std::vector<std::vector<int>> l = o->moe_load();
    if (l.size() != sum.size()) throw_error("DataParallel: replicas ran different MoE layers");
    for (std::size_t i = 0; i < l.size(); i++)
      for (std::size_t e = 0; e < l[i].size(); e++) sum[i][e] += l[i][e];
  }
  return sum;
}

template <typename real>
std::vector<double> DataParallel<real>::moe_maxvio() const {
  if (others_.empty()) return primary_.moe_maxvio();
  std::vector<double> v;
  for (const std::vector<int>& load : moe_load()) v.push_back(::tinyds::moe_maxvio(load.data(), static_cast<int>(load.size())));
  return v;
}

template <typename real>
void DataParallel<real>::update_moe_bias() {
  if (others_.empty()) { primary_.update_moe_bias(); return; }
  primary_.update_moe_bias(moe_load());  // from the whole batch's loads
  sync();
}

template class DataParallel<float>;
template class DataParallel<double>;

}  // namespace tinyds
